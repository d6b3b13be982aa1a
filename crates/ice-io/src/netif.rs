//! Local interface addresses (getifaddrs), shared by `natter serve`, `natter ice connect` and the phone.

use std::net::IpAddr;

/// Every address of every interface that is up, with the interface's name (getifaddrs order).
pub fn interface_addresses() -> Vec<(String, IpAddr)> {
    let mut found = Vec::new();
    // SAFETY: getifaddrs fills a linked list we walk read-only and free with freeifaddrs.
    unsafe {
        let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifap) != 0 {
            return found;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_flags & (libc::IFF_UP as u32) == 0 {
                continue;
            }
            let fam = i32::from((*ifa.ifa_addr).sa_family);
            let ip = if fam == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
            } else if fam == libc::AF_INET6 {
                let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                IpAddr::from(sin6.sin6_addr.s6_addr)
            } else {
                continue;
            };
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            found.push((name, ip));
        }
        libc::freeifaddrs(ifap);
    }
    found
}

/// Usable host addresses for media: up, not link-local, the loopback ones only when
/// nothing else exists (a namespace with only `lo`). At most 16.
pub fn host_addresses(filter: &natter_ice::InterfaceFilter) -> Vec<(String, IpAddr)> {
    let all = interface_addresses();
    let mut v: Vec<(String, IpAddr)> = all
        .iter()
        .filter(|(name, ip)| filter.allows(name, *ip))
        .take(16)
        .cloned()
        .collect();
    if v.is_empty() {
        v = all
            .into_iter()
            .filter(|(_, ip)| ip.is_loopback())
            .take(2)
            .collect();
    }
    v
}
