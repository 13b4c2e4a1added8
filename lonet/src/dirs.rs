//! Where networks live on disk: `<tmp>/lonet/<name>/registry.db`.
//!
//! The root `<tmp>/lonet` is made world-writable and sticky (mode 1777, set
//! explicitly so the umask cannot cut it), like `/tmp`, so every user can
//! create networks in it. A root that others can write to without the sticky
//! bit (someone else's 0777 directory) is refused, as is a root that is a
//! symbolic link made by another user. A network directory is private to its owner (0700);
//! one that is a symbolic link or belongs to another user is refused, so
//! nobody can plant a registry for us.

use std::collections::hash_map::RandomState;
use std::fs::{self, DirBuilder};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The name of the registry file in a network directory.
pub const REGISTRY_FILE: &str = "registry.db";

/// The default root: `$TMPDIR/lonet`, or `/tmp/lonet`.
pub fn default_root() -> PathBuf {
    let tmp = std::env::var_os("TMPDIR")
        .filter(|t| !t.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    tmp.join("lonet")
}

/// Checks that `name` can be a network directory's name.
pub fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid network name {name:?}: it must not be empty, \".\" or \"..\", or contain '/' or NUL"),
        ));
    }
    Ok(())
}

/// Creates the root if it is missing, with mode 1777, and checks it (see
/// [`check_root`]). A root of ours that is not 1777 (the umask cut it) is
/// set to 1777; another user's root is left as its owner made it.
pub fn ensure_root(root: &Path) -> io::Result<()> {
    match DirBuilder::new().recursive(true).mode(0o1777).create(root) {
        Ok(()) => {}
        Err(e) => return Err(annotate(e, "create", root)),
    }
    let meta = root_metadata(root)?;
    if meta.uid() == euid() && meta.mode() & 0o7777 != 0o1777 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o1777))
            .map_err(|e| annotate(e, "chmod", root))?;
    }
    check_root(root)
}

/// Checks, without creating or changing anything, that `root` can hold
/// networks safely: a directory (or a symbolic link to one made by us or by
/// root), and, if others can write to it, with the sticky bit set, so that
/// nobody can rename or remove another user's network directory.
pub fn check_root(root: &Path) -> io::Result<()> {
    let meta = root_metadata(root)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        let who = if mode & 0o002 != 0 {
            "everyone"
        } else {
            "its group"
        };
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "lonet root {}: writable by {who} (mode {mode:04o}, owner uid {}) without the sticky bit, \
                 so others could replace a network directory in it; refusing to use it \
                 (make it mode 1777 or choose another root)",
                root.display(),
                meta.uid()
            ),
        ));
    }
    Ok(())
}

/// The root's metadata, following a symbolic link only if we or root
/// made it; refuses anything but a directory.
fn root_metadata(root: &Path) -> io::Result<fs::Metadata> {
    let link = fs::symlink_metadata(root).map_err(|e| annotate(e, "stat", root))?;
    if link.file_type().is_symlink() && link.uid() != euid() && link.uid() != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "lonet root {}: is a symbolic link owned by uid {}, not by us (uid {}) or root; refusing to follow it",
                root.display(),
                link.uid(),
                euid()
            ),
        ));
    }
    let meta = fs::metadata(root).map_err(|e| annotate(e, "stat", root))?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("lonet root {}: not a directory", root.display()),
        ));
    }
    Ok(meta)
}

/// Opens (creating if needed) the directory of network `name` under `root`,
/// refusing a symbolic link or another user's directory.
pub fn network_dir(root: &Path, name: &str) -> io::Result<PathBuf> {
    check_name(name)?;
    ensure_root(root)?;
    let dir = root.join(name);
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(annotate(e, "create", &dir)),
    }
    check_private_dir(&dir)?;
    Ok(dir)
}

/// Creates a fresh network directory with a random, unused decimal name.
pub fn new_network_dir(root: &Path) -> io::Result<(String, PathBuf)> {
    ensure_root(root)?;
    let seed = RandomState::new();
    for attempt in 0u64..10_000 {
        let mut h = seed.build_hasher();
        h.write_u64(attempt);
        h.write_u32(std::process::id());
        let name = (h.finish() % 10_000_000_000).to_string();
        let dir = root.join(&name);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok((name, dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(annotate(e, "create", &dir)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "lonet root {}: no unused network name found",
            root.display()
        ),
    ))
}

/// Refuses a network directory that is not a real directory of ours
/// (a symbolic link, not a directory, or another user's).
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(|e| annotate(e, "stat", dir))?;
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "lonet network directory {}: {why}; refusing to use it",
                dir.display()
            ),
        ))
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link");
    }
    if !meta.is_dir() {
        return refuse("is not a directory");
    }
    if meta.uid() != euid() {
        return refuse(&format!(
            "is owned by uid {}, not by us (uid {})",
            meta.uid(),
            euid()
        ));
    }
    Ok(())
}

fn annotate(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_root_1777_and_network_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lonet");
        let dir = network_dir(&root, "mynet").unwrap();
        assert_eq!(dir, root.join("mynet"));
        assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, 0o1777);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
        // again: the same directory
        assert_eq!(network_dir(&root, "mynet").unwrap(), dir);
    }

    #[test]
    fn fresh_names_are_unique_decimal() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lonet");
        let (a, da) = new_network_dir(&root).unwrap();
        let (b, db) = new_network_dir(&root).unwrap();
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_digit()) && !a.is_empty());
        assert!(da.is_dir() && db.is_dir());
    }

    #[test]
    fn refuses_symlinks_files_and_bad_names() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lonet");
        ensure_root(&root).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("linked")).unwrap();
        let err = network_dir(&root, "linked").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        fs::write(root.join("file"), b"").unwrap();
        assert!(network_dir(&root, "file")
            .unwrap_err()
            .to_string()
            .contains("is not a directory"));
        for bad in ["", ".", "..", "a/b", "nul\0"] {
            assert_eq!(
                network_dir(&root, bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_another_users_directory() {
        if euid() != 0 {
            return; // only root can make a directory owned by someone else
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lonet");
        ensure_root(&root).unwrap();
        let theirs = root.join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(12345), None).unwrap();
        let err = network_dir(&root, "theirs").unwrap_err();
        assert!(err.to_string().contains("owned by uid 12345"), "{err}");
    }

    #[test]
    fn a_foreign_writable_root_needs_the_sticky_bit() {
        if euid() != 0 {
            return; // only root can make a directory owned by someone else
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lonet");
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(65534), None).unwrap();
        for mode in [0o777, 0o775] {
            fs::set_permissions(&root, fs::Permissions::from_mode(mode)).unwrap();
            let err = network_dir(&root, "mynet").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{mode:o}");
            assert!(err.to_string().contains("without the sticky bit"), "{err}");
            assert!(
                err.to_string().contains(&format!("mode 0{mode:o}")),
                "{err}"
            );
            assert!(!root.join("mynet").exists(), "{mode:o}");
            assert!(check_root(&root).is_err());
            // and it is left as its owner made it
            assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, mode);
        }
        // Sticky (like /tmp), or not writable by others: accepted.
        for mode in [0o1777, 0o755] {
            fs::set_permissions(&root, fs::Permissions::from_mode(mode)).unwrap();
            ensure_root(&root).unwrap_or_else(|e| panic!("{mode:o}: {e}"));
            check_root(&root).unwrap();
        }
    }

    #[test]
    fn our_root_is_accepted_and_made_sticky() {
        for mode in [0o700, 0o755, 0o777, 0o1777] {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("lonet");
            fs::create_dir(&root).unwrap();
            fs::set_permissions(&root, fs::Permissions::from_mode(mode)).unwrap();
            // Only looking: our own 0777 root is not yet safe.
            assert_eq!(check_root(&root).is_ok(), mode != 0o777, "{mode:o}");
            network_dir(&root, "mynet").unwrap_or_else(|e| panic!("{mode:o}: {e}"));
            assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, 0o1777);
        }
    }

    #[test]
    fn a_root_linked_by_another_user_is_refused() {
        if euid() != 0 {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let root = tmp.path().join("lonet");
        std::os::unix::fs::symlink(&real, &root).unwrap();
        // Ours: followed.
        network_dir(&root, "a").unwrap();
        std::os::unix::fs::lchown(&root, Some(65534), None).unwrap();
        let err = network_dir(&root, "b").unwrap_err();
        assert!(
            err.to_string().contains("symbolic link owned by uid 65534"),
            "{err}"
        );
        assert!(!real.join("b").exists());
    }

    #[test]
    fn root_that_is_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lonet");
        fs::write(&root, b"").unwrap();
        assert!(network_dir(&root, "x").is_err());
    }
}
