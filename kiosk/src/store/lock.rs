//! The data folder's lock (`<data>/kiosk.lock`, an advisory `flock`): a running kiosk holds it for
//! as long as it runs, and `enrol-kiosk` and `rotate-key` hold it while they work. So a key can
//! never be rotated under a running kiosk (which would go on signing with the old key), and two
//! kiosks never share one chain. The operating system releases the lock when the process ends,
//! even when it is killed.

use std::fs::{File, TryLockError};
use std::path::Path;

use super::Error;

/// Held while alive; dropping it releases the lock.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

impl DataLock {
    /// Takes the lock of `data_dir` (creating the folder), or says who is likely holding it.
    pub fn acquire(data_dir: &Path) -> Result<DataLock, Error> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::Schema(format!("{}: {e}", data_dir.display())))?;
        let path = data_dir.join("kiosk.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Schema(format!("{}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(DataLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Busy(format!(
                "{} is in use by a running kiosk (or another enrol-kiosk / rotate-key); \
                 stop the kiosk first / 本机正在运行，请先停止",
                data_dir.display()
            ))),
            Err(TryLockError::Error(e)) => {
                Err(Error::Schema(format!("locking {}: {e}", path.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = DataLock::acquire(dir.path()).expect("first");
        let e = DataLock::acquire(dir.path()).expect_err("second is refused");
        assert!(matches!(e, Error::Busy(_)), "{e}");
        assert!(e.to_string().contains("stop the kiosk first"), "{e}");
        drop(a);
        DataLock::acquire(dir.path()).expect("free again");
    }
}
