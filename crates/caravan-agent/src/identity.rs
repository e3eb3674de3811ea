//! The node's identity, kept in the data directory so a restarted agent is the same node
//! (Nomad's `client-id` and `secret-id` files).

use std::io;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub node_id: String,
    pub secret_id: String,
}

fn read_or_create(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => Ok(s.trim().to_owned()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold a UUID", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &id)?;
            std::fs::rename(&tmp, path)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Loads the identity from `dir`, creating it on first start.
pub fn load_or_create(dir: &Path) -> io::Result<Identity> {
    std::fs::create_dir_all(dir)?;
    Ok(Identity {
        node_id: read_or_create(&dir.join("client-id"))?,
        secret_id: read_or_create(&dir.join("secret-id"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.node_id, a.secret_id);
    }

    #[test]
    fn corrupt_identity_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client-id"), "garbage").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("client-id"));
    }
}
