//! Stand-in for the ALSA handle in a build without libasound (see `build.rs`): opening
//! fails with [`DeviceError::Unavailable`], so the public types keep their signatures and
//! callers get a typed error instead of a build failure.

use std::convert::Infallible;

use super::Direction;
use crate::error::DeviceError;

const WHY: &str = "audio devices: built without ALSA (install libasound2-dev and rebuild)";

/// Never constructed: [`Pcm::open`] always fails.
#[derive(Debug)]
pub(crate) struct Pcm(Infallible);

impl Pcm {
    pub(crate) fn open(_name: &str, _dir: Direction, _rate: u32) -> Result<Pcm, DeviceError> {
        Err(DeviceError::Unavailable(WHY))
    }

    pub(crate) fn read_exact(&mut self, _buf: &mut [i16]) -> Result<(), DeviceError> {
        match self.0 {}
    }

    pub(crate) fn write_all(&mut self, _buf: &[i16]) -> Result<(), DeviceError> {
        match self.0 {}
    }
}
