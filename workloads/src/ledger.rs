//! The ledger: every frame a device was told was stored must be in the store
//! exactly once. Per device, the stored seqs (read back through
//! `GET /devices/{id}/frames`) are compared with what its agent reported.

use std::collections::{BTreeMap, BTreeSet};

use lastseen_cloud::testkit::{Api, ApiCallError};
use serde::{Deserialize, Serialize};

/// Page size used to read a device's frames (the cloud's default `max_page_size`).
const PAGE: u32 = 500;

/// What one device's agent knows about its frames.
#[derive(Clone, Debug, Default)]
pub struct DeviceBook {
    pub acked: Vec<u64>,
    pub rejected: Vec<u64>,
    /// Still in the spool when the run ended.
    pub pending: Vec<u64>,
}

/// One device's findings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceCheck {
    pub device: String,
    pub acked: u64,
    pub stored: u64,
    /// Acked, but not in the store: lost.
    pub missing: Vec<u64>,
    /// Stored more than once.
    pub duplicates: Vec<u64>,
    /// Seqs below the highest one the device used that it neither got
    /// confirmed nor still holds: lost before they reached the cloud.
    pub gaps: Vec<u64>,
    /// Acked more than once by the agent (a report must come once per frame).
    pub acked_twice: Vec<u64>,
    /// Stored, but the agent had no answer yet when the run ended (not a loss).
    pub stored_unconfirmed: u64,
}

impl DeviceCheck {
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.duplicates.is_empty()
            && self.gaps.is_empty()
            && self.acked_twice.is_empty()
    }
}

/// Compares one device's book with the seqs the store holds for it.
pub fn check_device(device: &str, book: &DeviceBook, stored: &[u64]) -> DeviceCheck {
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for seq in stored {
        *counts.entry(*seq).or_default() += 1;
    }
    let mut acked = BTreeSet::new();
    let mut acked_twice = Vec::new();
    for seq in &book.acked {
        if !acked.insert(*seq) {
            acked_twice.push(*seq);
        }
    }
    let accounted: BTreeSet<u64> = acked
        .iter()
        .chain(&book.rejected)
        .chain(&book.pending)
        .copied()
        .collect();
    let highest = accounted.iter().next_back().copied();
    let gaps = match highest {
        Some(highest) => (0..highest)
            .filter(|seq| !accounted.contains(seq) && !counts.contains_key(seq))
            .collect(),
        None => Vec::new(),
    };
    DeviceCheck {
        device: device.to_owned(),
        acked: acked.len() as u64,
        stored: stored.len() as u64,
        missing: acked
            .iter()
            .filter(|seq| !counts.contains_key(seq))
            .copied()
            .collect(),
        duplicates: counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(seq, _)| *seq)
            .collect(),
        gaps,
        acked_twice,
        stored_unconfirmed: counts.keys().filter(|seq| !acked.contains(seq)).count() as u64,
    }
}

/// The ledger over all devices.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ledger {
    pub passed: bool,
    pub devices: u64,
    pub acked: u64,
    pub stored: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub gaps: u64,
    pub stored_unconfirmed: u64,
    /// The devices that failed, in full (at most 20).
    pub failures: Vec<DeviceCheck>,
}

impl Ledger {
    pub fn of(checks: &[DeviceCheck]) -> Self {
        let failures: Vec<DeviceCheck> = checks.iter().filter(|c| !c.passed()).cloned().collect();
        Self {
            passed: failures.is_empty(),
            devices: checks.len() as u64,
            acked: checks.iter().map(|c| c.acked).sum(),
            stored: checks.iter().map(|c| c.stored).sum(),
            missing: checks.iter().map(|c| c.missing.len() as u64).sum(),
            duplicates: checks.iter().map(|c| c.duplicates.len() as u64).sum(),
            gaps: checks.iter().map(|c| c.gaps.len() as u64).sum(),
            stored_unconfirmed: checks.iter().map(|c| c.stored_unconfirmed).sum(),
            failures: failures.into_iter().take(20).collect(),
        }
    }
}

#[derive(Deserialize)]
struct FramePage {
    items: Vec<StoredFrame>,
    next_after_seq: Option<u64>,
}

#[derive(Deserialize)]
struct StoredFrame {
    seq: u64,
}

/// Every seq the store holds for `device`, read page by page as its owner.
pub async fn stored_seqs(
    api: &Api,
    owner_token: &str,
    device: &str,
) -> Result<Vec<u64>, ApiCallError> {
    let mut seqs = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let mut path = format!("/devices/{device}/frames?limit={PAGE}");
        if let Some(after) = after {
            path.push_str(&format!("&after_seq={after}"));
        }
        let page: FramePage = api
            .json(
                "reading a device's frames",
                api.client().get(api.url(&path)).bearer_auth(owner_token),
            )
            .await?;
        seqs.extend(page.items.iter().map(|f| f.seq));
        match page.next_after_seq {
            Some(next) => after = Some(next),
            None => return Ok(seqs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(acked: &[u64], rejected: &[u64], pending: &[u64]) -> DeviceBook {
        DeviceBook {
            acked: acked.to_vec(),
            rejected: rejected.to_vec(),
            pending: pending.to_vec(),
        }
    }

    #[test]
    fn a_device_whose_acked_frames_are_all_stored_once_passes() {
        let check = check_device("d", &book(&[0, 1, 3], &[2], &[4, 5]), &[0, 1, 3, 4]);
        assert!(check.passed(), "{check:?}");
        assert_eq!((check.acked, check.stored), (3, 4));
        // 4 was stored but its ack had not come back: not a loss.
        assert_eq!(check.stored_unconfirmed, 1);
    }

    #[test]
    fn lost_repeated_and_skipped_frames_fail_the_ledger() {
        let missing = check_device("d", &book(&[0, 1, 2], &[], &[]), &[0, 2]);
        assert_eq!(missing.missing, [1]);
        assert!(!missing.passed());

        let duplicated = check_device("d", &book(&[0, 1], &[], &[]), &[0, 1, 1]);
        assert_eq!(duplicated.duplicates, [1]);
        assert!(!duplicated.passed());

        // 1 and 2 were neither confirmed, nor refused, nor pending, nor stored.
        let gaps = check_device("d", &book(&[0, 3], &[], &[]), &[0, 3]);
        assert_eq!(gaps.gaps, [1, 2]);
        assert!(!gaps.passed());

        let twice = check_device("d", &book(&[0, 0], &[], &[]), &[0]);
        assert_eq!(twice.acked_twice, [0]);
        assert!(!twice.passed());

        let ledger = Ledger::of(&[
            missing,
            duplicated,
            gaps,
            twice,
            check_device("ok", &book(&[0], &[], &[]), &[0]),
        ]);
        assert!(!ledger.passed);
        assert_eq!(ledger.devices, 5);
        assert_eq!((ledger.missing, ledger.duplicates, ledger.gaps), (1, 1, 2));
        assert_eq!(ledger.failures.len(), 4);
        assert!(Ledger::of(&[check_device("ok", &book(&[0], &[], &[]), &[0])]).passed);
    }
}
