//! `natter user add/remove/list`: manage the embedded store that `natter serve` reads.

use std::path::PathBuf;

use natter_store::SharedStore;

/// User management commands.
#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Add (or replace) a user.
    Add {
        /// User name.
        name: String,
        /// Password (only its derived keys are stored).
        #[arg(long, env = "NATTER_PASSWORD")]
        password: String,
        /// Realm the keys are derived for (must match the server's --realm / SIP domain).
        #[arg(long, default_value = "natter")]
        realm: Vec<String>,
    },
    /// Remove a user from every realm.
    Remove {
        /// User name.
        name: String,
    },
    /// List users.
    List,
}

/// Runs a user command against `store` (`redis://...` or a directory), else the store in
/// `data_dir`.
pub fn run(
    cmd: UserCmd,
    data_dir: PathBuf,
    store: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let spec = store.unwrap_or_else(|| data_dir.to_string_lossy().into_owned());
    let store: SharedStore = natter_store::open(&spec)?;
    match cmd {
        UserCmd::Add {
            name,
            password,
            realm,
        } => {
            for r in &realm {
                store.add_user(&name, r, &password)?;
                println!("added {name} in realm {r}");
            }
        }
        UserCmd::Remove { name } => {
            let n = store.remove_user(&name, None)?;
            if n == 0 {
                return Err(format!("no user {name}").into());
            }
            println!("removed {name}");
        }
        UserCmd::List => {
            for u in store.list_users()? {
                println!("{}\t{}", u.name, u.realm);
            }
        }
    }
    Ok(())
}
