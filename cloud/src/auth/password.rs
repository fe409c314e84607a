//! Argon2id password hashing. Hashing is deliberately slow, so callers run it
//! on a blocking thread.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// Verified against when a username does not exist, so a login for an
    /// unknown user costs as much as one for a known user.
    decoy_hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, HashError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        let mut hasher = Self {
            params,
            decoy_hash: String::new(),
        };
        hasher.decoy_hash = hasher.hash("lastseen decoy password")?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string carrying the algorithm, parameters and salt.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Uses the parameters stored in `hash`, so raising them in config does
    /// not lock out users whose hashes were made with the old ones.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        PasswordHash::new(hash).is_ok_and(|parsed| {
            self.argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    }

    /// Spends the time of one verification and answers false.
    pub fn verify_decoy(&self, password: &str) -> bool {
        let _ = self.verify(password, &self.decoy_hash);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(64, 1, 1).unwrap()
    }

    #[test]
    fn verifies_the_right_password_only() {
        let hasher = fast();
        let hash = hasher.hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(hasher.verify("correct horse battery", &hash));
        assert!(!hasher.verify("correct horse battery!", &hash));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let hasher = fast();
        assert_ne!(
            hasher.hash("same password").unwrap(),
            hasher.hash("same password").unwrap()
        );
    }

    #[test]
    fn a_malformed_stored_hash_never_verifies() {
        assert!(!fast().verify("anything", "not a phc string"));
    }
}
