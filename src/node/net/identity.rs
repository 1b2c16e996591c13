//! The node's persistent libp2p key: an ed25519 keypair in `data_dir/node_key`, in libp2p's
//! protobuf key encoding, created on first start (mode 0600) and reused after, so that the
//! node keeps its peer id across restarts. Owns that file and nothing else.
use super::NetError;
use libp2p::identity::Keypair;
use std::io::Write;
use std::path::Path;

/// The key file's name in the data directory.
pub const NODE_KEY_FILE: &str = "node_key";

/// Reads the node key from `data_dir`, or creates and stores a new one if there is none.
pub fn load_or_create(data_dir: &Path) -> Result<Keypair, NetError> {
    let path = data_dir.join(NODE_KEY_FILE);
    match std::fs::read(&path) {
        // libp2p's own complaint can mislead ("cargo feature rsa is not enabled" for an empty
        // file): say what the file holds.
        Ok(bytes) if bytes.is_empty() => Err(NetError::CorruptIdentity {
            path: path.clone(),
            detail: "it is empty".into(),
        }),
        Ok(bytes) => {
            Keypair::from_protobuf_encoding(&bytes).map_err(|e| NetError::CorruptIdentity {
                path: path.clone(),
                detail: format!(
                    "it holds {} bytes that are not a key in libp2p's encoding: {e}",
                    bytes.len()
                ),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            store(data_dir, &key)?;
            tracing::info!(
                "created node key {} (peer id {})",
                path.display(),
                key.public().to_peer_id()
            );
            Ok(key)
        }
        Err(source) => Err(NetError::Identity { path, source }),
    }
}

/// Writes `key` to `data_dir/node_key` readable by the owner only, through a temporary file
/// and a rename so that a crash never leaves a half-written key.
fn store(data_dir: &Path, key: &Keypair) -> Result<(), NetError> {
    let path = data_dir.join(NODE_KEY_FILE);
    let temporary = data_dir.join(format!("{NODE_KEY_FILE}.tmp"));
    let io_error = |source| NetError::Identity {
        path: path.clone(),
        source,
    };
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| NetError::CorruptIdentity {
            path: path.clone(),
            detail: format!("cannot encode the new key: {e}"),
        })?;
    std::fs::create_dir_all(data_dir).map_err(io_error)?;
    // A leftover from a crash may have other permissions; the mode applies only on creation.
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(io_error)?;
    file.write_all(&bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    std::fs::rename(&temporary, &path).map_err(io_error)
}
