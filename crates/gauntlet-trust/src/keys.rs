//! Minisign key material, read the way the stock `minisign` tool writes it: public keys (a
//! `.pub` file or its base64 line), secret keys (unencrypted, including the all-zero checksum
//! `minisign -G -W` writes, or password-protected), and signatures (`.minisig`), with every
//! reason a signature is refused spelt out. Nothing here decides *which* keys to trust: that
//! is [`crate::Trust`].

use std::io::Cursor;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use minisign::{PublicKey, SecretKey, SecretKeyBox, SignatureBox};

use crate::TrustError;

/// The environment variable that can carry the secret key (a minisign secret key file's text).
pub const KEY_ENV: &str = "GAUNTLET_SIGNING_KEY";
/// The password of a password-protected secret key, for unattended use.
pub const PASSWORD_ENV: &str = "GAUNTLET_KEY_PASSWORD";

/// minisign's key id of `keynum`, as minisign prints it (16 upper-case hex digits).
pub fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    let n = keynum.len().min(8);
    bytes[..n].copy_from_slice(&keynum[..n]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}

pub(crate) fn minisign_err(what: &str, e: minisign::PError) -> TrustError {
    TrustError::Key(format!("{what}: {e}"))
}

/// A public key from a minisign `.pub` file's text or its base64 line alone.
pub fn parse_public(text: &str, source: &str) -> Result<PublicKey, TrustError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .unwrap_or_default();
    PublicKey::from_base64(line)
        .map_err(|e| TrustError::Input(format!("{source}: not a minisign public key: {e}")))
}

/// A public key named on the command line: a `.pub` file, or its base64 line given directly.
pub fn public_from_arg(arg: &str) -> Result<PublicKey, TrustError> {
    match std::fs::read_to_string(arg) {
        Ok(text) => parse_public(&text, arg),
        Err(_) if is_public_line(arg) => parse_public(arg, "the key given"),
        Err(e) => Err(TrustError::io(Path::new(arg), e)),
    }
}

/// Whether `arg` is a public key's base64 line rather than a path: 56 base64 characters
/// from `RW` (a line may contain `/`, so a path that does not exist is tried as a line).
pub fn is_public_line(arg: &str) -> bool {
    arg.len() == 56
        && arg.starts_with("RW")
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The 32-byte Ed25519 public key inside a minisign public key.
pub fn raw_public(public: &PublicKey) -> Result<[u8; 32], TrustError> {
    // algorithm (2) + key id (8) + key (32)
    public
        .to_bytes()
        .get(10..42)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| TrustError::Key("unexpected minisign public key layout".into()))
}

/// A key that can sign. Its `Debug` shows the id only: secret material never reaches a log.
pub struct SigningKey {
    pub id: String,
    secret: SecretKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

/// Byte offsets in minisign's secret key layout: algorithms (6), salt (32), limits (16),
/// key id (8), then libsodium's 64-byte secret key (the Ed25519 seed, then the public key),
/// then a 32-byte checksum.
const SEED: std::ops::Range<usize> = 62..94;
const EMBEDDED_PUBLIC: std::ops::Range<usize> = 94..126;
const CHECKSUM: std::ops::Range<usize> = 126..158;

impl SigningKey {
    /// From a minisign secret key file's text (or its base64 line alone).
    pub fn from_text(
        text: &str,
        password: Option<String>,
        source: &str,
    ) -> Result<Self, TrustError> {
        let line = secret_line(text);
        let bytes = STANDARD
            .decode(line)
            .ok()
            .filter(|b| b.len() == CHECKSUM.end)
            .ok_or_else(|| TrustError::Key(format!("{source}: not a minisign secret key")))?;
        let boxed = format!("untrusted comment: gauntlet secret key\n{line}\n");
        let secret = match &bytes[2..4] {
            b"Sc" => {
                let Some(password) = password else {
                    return Err(TrustError::Key(format!(
                        "{source}: the secret key is password-protected; set {PASSWORD_ENV}"
                    )));
                };
                // minisign's messages here name no secret: "Wrong password for that key".
                SecretKey::from_box(
                    SecretKeyBox::from_string(&boxed).map_err(|e| minisign_err(source, e))?,
                    Some(password),
                )
                .map_err(|e| TrustError::Key(format!("{source}: {e}")))?
            }
            [0, 0] if bytes[CHECKSUM].iter().all(|b| *b == 0) => {
                // `minisign -G -W` leaves the checksum out (all zeros); the key is checked
                // below by deriving its public half instead.
                SecretKey::from_bytes(&bytes).map_err(|e| minisign_err(source, e))?
            }
            [0, 0] => SecretKey::from_unencrypted_box(
                SecretKeyBox::from_string(&boxed).map_err(|e| minisign_err(source, e))?,
            )
            .map_err(|e| TrustError::Key(format!("{source}: {e}")))?,
            _ => {
                return Err(TrustError::Key(format!(
                    "{source}: the secret key is encrypted with an algorithm minisign does not use"
                )));
            }
        };
        let public = PublicKey::from_secret_key(&secret)
            .map_err(|e| TrustError::Key(format!("{source}: {e}")))?;
        let key = SigningKey {
            id: key_id(secret.keynum()),
            secret,
            public,
        };
        key.check_halves(source)?;
        Ok(key)
    }

    /// The seed must give the public key stored beside it: a corrupted or mis-decrypted key
    /// never signs.
    fn check_halves(&self, source: &str) -> Result<(), TrustError> {
        let bytes = self.secret.to_bytes();
        let derived = ed25519_dalek::SigningKey::from_bytes(&self.seed()?).verifying_key();
        if bytes.get(EMBEDDED_PUBLIC) != Some(derived.as_bytes().as_slice())
            || *derived.as_bytes() != raw_public(&self.public)?
        {
            return Err(TrustError::Key(format!(
                "{source}: corrupted key (its two halves do not match)"
            )));
        }
        Ok(())
    }

    fn seed(&self) -> Result<[u8; 32], TrustError> {
        self.secret
            .to_bytes()
            .get(SEED)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| TrustError::Key("unexpected minisign secret key layout".into()))
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// A minisign signature (the text of a `.minisig` file) over `data`.
    pub fn sign_minisign(&self, data: &[u8], trusted_comment: &str) -> Result<String, TrustError> {
        let untrusted = format!("signature from gauntlet secret key {}", self.id);
        let sig = minisign::sign(
            Some(&self.public),
            &self.secret,
            Cursor::new(data),
            Some(trusted_comment),
            Some(&untrusted),
        )
        .map_err(|e| minisign_err("signing", e))?;
        Ok(sig.into_string())
    }

    /// A plain Ed25519 signature over `message` (what DSSE needs), by the same key.
    pub fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64], TrustError> {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&self.seed()?);
        if *key.verifying_key().as_bytes() != raw_public(&self.public)? {
            return Err(TrustError::Key(
                "the secret key does not match its public key".into(),
            ));
        }
        Ok(key.sign(message).to_bytes())
    }
}

/// A freshly made key pair as minisign writes it: the public key, and the secret key file's
/// text (password-protected when a password is given).
pub struct KeyFiles {
    pub id: String,
    pub public: PublicKey,
    pub secret_text: String,
}

impl std::fmt::Debug for KeyFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyFiles({})", self.id)
    }
}

pub fn generate(password: Option<String>, label: &str) -> Result<KeyFiles, TrustError> {
    let pair = match password {
        Some(password) => minisign::KeyPair::generate_encrypted_keypair(Some(password)),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| minisign_err("generating a key", e))?;
    let id = key_id(pair.pk.keynum());
    let secret_text = pair
        .sk
        .to_box(Some(&format!("{label} {id}")))
        .map_err(|e| minisign_err("encoding the secret key", e))?
        .to_string();
    Ok(KeyFiles {
        id,
        public: pair.pk,
        secret_text,
    })
}

/// A public key as the text of a minisign `.pub` file.
pub fn public_file_text(public: &PublicKey) -> Result<String, TrustError> {
    Ok(public
        .to_box()
        .map_err(|e| minisign_err("encoding the public key", e))?
        .to_string())
}

/// The base64 line of a secret key file's text (or the text itself when it is only that).
fn secret_line(text: &str) -> &str {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(first) if first.starts_with("untrusted comment:") => lines.next().unwrap_or_default(),
        Some(first) => first,
        None => "",
    }
}

/// Whether a secret key file's text holds a password-protected key.
pub fn is_encrypted(text: &str) -> bool {
    STANDARD
        .decode(secret_line(text))
        .ok()
        .is_some_and(|b| b.get(2..4) == Some(b"Sc"))
}

/// A signature file's bytes, read as minisign writes them. The untrusted comment is not
/// covered by the signature, so any bytes there are accepted; the rest must be minisign's.
pub fn parse_signature(bytes: &[u8], what: &str) -> Result<SignatureBox, TrustError> {
    let (first, rest) = match bytes.iter().position(|b| *b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i..]),
        None => (bytes, &[][..]),
    };
    let rest = std::str::from_utf8(rest).map_err(|_| {
        TrustError::Verify(format!(
            "the signature of {what} is malformed: its trusted comment is not UTF-8"
        ))
    })?;
    let text = format!("{}{rest}", String::from_utf8_lossy(first));
    SignatureBox::from_string(&text)
        .map_err(|e| TrustError::Verify(format!("the signature of {what} is malformed: {e}")))
}

/// Who signed, and what the signature's trusted comment says.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key_id: String,
    pub trusted_comment: String,
}

/// Checks a signature file's bytes over `data` with the public key `public_for` gives for
/// the key id the signature names (or the reason that key is not trusted).
pub fn verify_signed(
    data: &[u8],
    signature: &[u8],
    what: &str,
    public_for: impl FnOnce(&str) -> Result<PublicKey, TrustError>,
) -> Result<Verified, TrustError> {
    let sig = parse_signature(signature, what)?;
    let id = key_id(sig.keynum());
    let public = public_for(&id)?;
    verify_with(&public, &id, data, &sig, what)
}

/// Checks `sig` over `data` with `public` (whose id is `id`).
pub fn verify_with(
    public: &PublicKey,
    id: &str,
    data: &[u8],
    sig: &SignatureBox,
    what: &str,
) -> Result<Verified, TrustError> {
    if !sig.is_prehashed() {
        return Err(TrustError::Verify(format!(
            "the signature of {what} by key {id} is a legacy minisign signature (`minisign -S -l`), which gauntlet does not accept: sign again without -l"
        )));
    }
    minisign::verify(public, sig, Cursor::new(data), true, false, false).map_err(|_| {
        TrustError::Verify(format!(
            "the signature by key {id} does not match {what}: it changed after it was signed, or the signature is for another file"
        ))
    })?;
    Ok(Verified {
        key_id: id.to_string(),
        trusted_comment: sig.trusted_comment().unwrap_or_default(),
    })
}

/// Reads a signature file beside `path` (`PATH.minisig`).
pub fn read_signature(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    let mut name = path.as_os_str().to_owned();
    name.push(".minisig");
    std::fs::read(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_line_is_a_key_even_with_slashes_in_it() {
        let line = "RWTN1kQyz0EFpKkljFQe0zX/rbhDWHG0Lb9vRsfhglnB/Zuw59JxQx6T";
        assert!(is_public_line(line));
        let public = parse_public(line, "arg").unwrap();
        assert_eq!(key_id(public.keynum()), "A40541CF3244D6CD");
    }

    #[test]
    fn an_unencrypted_key_without_a_checksum_signs_like_minisign_w() {
        // What `minisign -G -W` writes: no KDF, and a checksum of zeros.
        let key =
            SigningKey::from_text(&generate(None, "k").unwrap().secret_text, None, "k").unwrap();
        let mut bytes = key.secret.to_bytes();
        bytes[CHECKSUM].fill(0);
        let text = format!(
            "untrusted comment: minisign encrypted secret key\n{}\n",
            STANDARD.encode(&bytes)
        );
        let loaded = SigningKey::from_text(&text, None, "k").unwrap();
        assert_eq!(loaded.id, key.id);
        let sig = loaded.sign_minisign(b"x", "t").unwrap();
        let parsed = parse_signature(sig.as_bytes(), "x").unwrap();
        verify_with(key.public(), &key.id, b"x", &parsed, "x").unwrap();
        // A flipped bit in the seed is caught without the checksum.
        bytes[SEED.start] ^= 1;
        let text = format!("untrusted comment: k\n{}\n", STANDARD.encode(&bytes));
        let err = SigningKey::from_text(&text, None, "k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("corrupted"), "{err}");
    }

    #[test]
    fn a_non_utf8_untrusted_comment_does_not_make_a_signature_malformed() {
        let key =
            SigningKey::from_text(&generate(None, "k").unwrap().secret_text, None, "k").unwrap();
        let sig = key.sign_minisign(b"data", "t").unwrap();
        let mut bytes = b"untrusted comment: caf\xe9\n".to_vec();
        bytes.extend_from_slice(sig.split_once('\n').unwrap().1.as_bytes());
        let parsed = parse_signature(&bytes, "data").unwrap();
        verify_with(key.public(), &key.id, b"data", &parsed, "data").unwrap();
    }
}
