//! Where the secrets a user types come from: the passphrase and a mnemonic to restore.
//!
//! The passphrase is never a command-line argument (it would show in `ps` and the shell
//! history). It comes from, in order: a file (`--passphrase-file`, one trailing newline
//! removed), the environment variable `CAIRN_WALLET_PASSPHRASE`, or an interactive prompt
//! on the terminal (hidden input; typed twice for a new wallet). Without a terminal and
//! without either source, it fails at once with a message saying how to give one, instead
//! of waiting for input that will never come. Everything read is zeroized on drop.

use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The environment variable holding the passphrase (for scripts and tests).
pub const PASSPHRASE_ENV: &str = "CAIRN_WALLET_PASSPHRASE";

/// Why no passphrase (or mnemonic) could be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The passphrase file could not be read.
    #[error("cannot read the passphrase file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// No source and nobody to ask.
    #[error(
        "a passphrase is needed but there is no terminal to ask on: give --passphrase-file FILE \
         or set {PASSPHRASE_ENV}"
    )]
    NoTerminal,
    /// Reading from the terminal or stdin failed.
    #[error("cannot read the {what}: {source}")]
    Read {
        /// `passphrase` or `mnemonic`.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The two passphrases typed for a new wallet differ.
    #[error("the two passphrases differ; nothing was written")]
    Mismatch,
    /// A new wallet needs a passphrase.
    #[error("the passphrase must not be empty")]
    Empty,
}

/// What the passphrase is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Decrypting an existing wallet.
    Unlock,
    /// Encrypting a new wallet: typed twice when prompted, never empty.
    New,
}

/// The passphrase sources of one run.
pub struct PassphraseSource {
    file: Option<PathBuf>,
    env: Option<Zeroizing<String>>,
}

impl PassphraseSource {
    /// `--passphrase-file` if given, and the environment variable if set.
    pub fn new(file: Option<PathBuf>) -> Self {
        PassphraseSource {
            file,
            env: std::env::var(PASSPHRASE_ENV).ok().map(Zeroizing::new),
        }
    }

    /// Only the given sources (no environment): for tests and embedding.
    pub fn explicit(file: Option<PathBuf>, value: Option<String>) -> Self {
        PassphraseSource {
            file,
            env: value.map(Zeroizing::new),
        }
    }

    /// The passphrase, from the first source that has one.
    pub fn get(&self, purpose: Purpose) -> Result<Zeroizing<String>, InputError> {
        let passphrase = if let Some(path) = &self.file {
            read_passphrase_file(path)?
        } else if let Some(value) = &self.env {
            value.clone()
        } else {
            prompt_passphrase(purpose)?
        };
        if purpose == Purpose::New && passphrase.is_empty() {
            return Err(InputError::Empty);
        }
        Ok(passphrase)
    }
}

/// Whether someone can be asked: input or messages are on a terminal.
pub fn interactive() -> bool {
    io::stdin().is_terminal() || io::stderr().is_terminal()
}

fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>, InputError> {
    let mut text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| InputError::File {
                path: path.to_path_buf(),
                source,
            })?,
        );
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

fn prompt_hidden(prompt: &str, what: &'static str) -> Result<Zeroizing<String>, InputError> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|source| InputError::Read { what, source })
}

fn prompt_passphrase(purpose: Purpose) -> Result<Zeroizing<String>, InputError> {
    if !interactive() {
        return Err(InputError::NoTerminal);
    }
    match purpose {
        Purpose::Unlock => prompt_hidden("Wallet passphrase: ", "passphrase"),
        Purpose::New => {
            let first = prompt_hidden("New wallet passphrase: ", "passphrase")?;
            if first.is_empty() {
                return Err(InputError::Empty);
            }
            let second = prompt_hidden("Repeat the passphrase: ", "passphrase")?;
            if *first != *second {
                return Err(InputError::Mismatch);
            }
            Ok(first)
        }
    }
}

/// The mnemonic to restore: read from standard input when it is not a terminal (a pipe or
/// a file), else asked for on the terminal with hidden input.
pub fn read_mnemonic() -> Result<Zeroizing<String>, InputError> {
    let read_error = |source| InputError::Read {
        what: "mnemonic",
        source,
    };
    if io::stdin().is_terminal() {
        return prompt_hidden(
            "Mnemonic (the words separated by spaces; input hidden): ",
            "mnemonic",
        );
    }
    let mut text = Zeroizing::new(String::new());
    io::stdin().read_to_string(&mut text).map_err(read_error)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_comes_first_and_loses_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "secret words \r\n").unwrap();
        let source = PassphraseSource::explicit(Some(path.clone()), Some("env".into()));
        assert_eq!(&*source.get(Purpose::Unlock).unwrap(), "secret words ");
        std::fs::write(&path, "two\n\n").unwrap();
        assert_eq!(&*source.get(Purpose::Unlock).unwrap(), "two\n");
        let env_only = PassphraseSource::explicit(None, Some("env".into()));
        assert_eq!(&*env_only.get(Purpose::New).unwrap(), "env");
    }

    #[test]
    fn empty_is_refused_for_new_wallets_only() {
        let empty = PassphraseSource::explicit(None, Some(String::new()));
        assert!(matches!(empty.get(Purpose::New), Err(InputError::Empty)));
        assert_eq!(&*empty.get(Purpose::Unlock).unwrap(), "");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let source = PassphraseSource::explicit(Some("/nonexistent/pw".into()), None);
        let error = source.get(Purpose::Unlock).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/pw"), "{error}");
    }
}
