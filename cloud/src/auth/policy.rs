//! What a username and a password must look like.
//!
//! `common_passwords.txt` holds the 1,000 most common passwords, most common
//! first: the head of the list Django ships
//! (`django/contrib/auth/common-passwords.txt.gz`, BSD-3-Clause), itself made
//! by Royce Williams from public breach corpora.

use std::collections::HashSet;
use std::sync::OnceLock;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Hashing cost grows with length; nobody types more than this.
pub const MAX_PASSWORD_BYTES: usize = 1024;
const USERNAME_BYTES: std::ops::RangeInclusive<usize> = 3..=32;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "a username is 3 to 32 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    Username,
    #[error("a password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes long")]
    PasswordLength,
    #[error("that password is one of the most common ones; choose another")]
    CommonPassword,
}

pub fn check_username(username: &str) -> Result<(), PolicyError> {
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    let starts_well = username
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if USERNAME_BYTES.contains(&username.len()) && starts_well && username.chars().all(allowed) {
        Ok(())
    } else {
        Err(PolicyError::Username)
    }
}

pub fn check_password(password: &str) -> Result<(), PolicyError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyError::PasswordLength);
    }
    if common_passwords().contains(password.to_lowercase().as_str()) {
        return Err(PolicyError::CommonPassword);
    }
    Ok(())
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_documented_rules() {
        for good in ["alice", "bob.smith", "c3po", "x_y-z"] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ab",
            "Alice",
            "-alice",
            "alice smith",
            "al'ice",
            "ålice",
            &"a".repeat(33),
        ] {
            assert_eq!(check_username(bad), Err(PolicyError::Username), "{bad}");
        }
    }

    #[test]
    fn passwords_need_ten_characters_and_a_bounded_length() {
        assert_eq!(
            check_password("123456789"),
            Err(PolicyError::PasswordLength)
        );
        assert!(check_password("correct horse").is_ok());
        assert_eq!(
            check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PolicyError::PasswordLength)
        );
    }

    #[test]
    fn the_list_holds_a_thousand_passwords_and_long_common_ones_are_refused() {
        assert_eq!(common_passwords().len(), 1000);
        for common in ["1234567890", "qwertyuiop", "1q2w3e4r5t", "QWERTYUIOP"] {
            assert_eq!(
                check_password(common),
                Err(PolicyError::CommonPassword),
                "{common}"
            );
        }
    }
}
