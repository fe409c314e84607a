//! Admission: what a frame must pass before it may take a place in the shared
//! detection queue, checked after the resend lookup (a resend of a stored
//! frame is always answered) and before [`DetectorPool::try_submit`].
//!
//! - **Quota** ([`super::quota`]): the owner's images plus this frame must fit
//!   `user_quota_bytes`; past it 507 `quota_exceeded` (MQTT: no ack), and the
//!   device keeps the frame.
//! - **Fairness**: two token buckets, one per device and one per owner (all
//!   their devices together), filled at `admit_*_pixels_per_sec` up to
//!   `admit_*_burst_pixels`. A frame costs its width × height, read from the
//!   JPEG header (no decoding): decoding and letterboxing, the detector's
//!   cost, grow with the pixels, not with the bytes sent. A frame that finds
//!   too few tokens gets 503 `overloaded` with a `Retry-After` of when the
//!   bucket will hold enough (MQTT: no ack), so one device or one account
//!   cannot keep the queue full and starve everyone else.
//!
//! A bucket that has filled up again is the same as no bucket, so the idle
//! ones are forgotten: memory follows the devices active in the last
//! refill time, never the number of devices ever seen.
//!
//! [`DetectorPool::try_submit`]: crate::detect::DetectorPool::try_submit

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use lastseen_shared::{DeviceId, UserId};

use super::IngestError;
use super::quota::{Quota, Reservation};
use crate::store::{DeviceRecord, RetentionStore};

/// One token bucket's size and fill rate, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub pixels_per_sec: u64,
    pub burst_pixels: u64,
}

/// The `admit_*`, `user_quota_*` and `clock_skew_flag_secs` settings.
#[derive(Clone, Debug)]
pub struct AdmissionSettings {
    pub device: Budget,
    pub owner: Budget,
    /// The least a frame is charged: inference costs the same whatever the
    /// frame's size, so tiny frames must not come nearly free.
    pub min_frame_pixels: u64,
    /// What a frame whose size cannot be read is charged (the detector will
    /// refuse it, but only after taking a place in the queue); also the most
    /// any frame is charged, since larger ones are refused before decoding.
    pub max_image_pixels: u64,
    pub user_quota_bytes: Option<u64>,
    /// How long a user's usage read from the store is trusted.
    pub quota_refresh: Duration,
    /// `captured_at` further than this from `received_at` flags the frame.
    pub clock_skew_flag: Duration,
}

/// Whose bucket ran dry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Device,
    Owner,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Device => "device",
            Scope::Owner => "account",
        }
    }
}

/// The frame would take the device or its owner past their share of the
/// detectors: send it again after `retry_after_secs`.
#[derive(Debug, thiserror::Error)]
#[error(
    "this {} is sending more image pixels per second than its share of the detectors; send the frame again in {retry_after_secs} s",
    .scope.as_str()
)]
pub struct OverBudget {
    pub scope: Scope,
    pub retry_after_secs: u32,
}

pub struct Admission {
    fair: Option<FairShare>,
    quota: Option<Quota>,
    clock_skew_flag: Option<TimeDelta>,
}

impl Admission {
    /// Admits everything and flags nothing (tools and tests that build an
    /// [`super::Ingest`] by hand).
    pub fn unlimited() -> Self {
        Self {
            fair: None,
            quota: None,
            clock_skew_flag: None,
        }
    }

    pub fn new(settings: &AdmissionSettings, store: Arc<dyn RetentionStore>) -> Self {
        Self {
            fair: Some(FairShare::new(
                settings.device,
                settings.owner,
                settings.min_frame_pixels,
                settings.max_image_pixels,
            )),
            quota: settings
                .user_quota_bytes
                .map(|limit| Quota::new(limit, settings.quota_refresh, store)),
            clock_skew_flag: TimeDelta::from_std(settings.clock_skew_flag).ok(),
        }
    }

    /// Quota first (a refused frame costs no tokens), then both buckets.
    pub async fn admit(
        &self,
        device: &DeviceRecord,
        jpeg: &[u8],
    ) -> Result<Ticket<'_>, IngestError> {
        let reservation = match &self.quota {
            Some(quota) => Some(quota.reserve(device.owner, jpeg.len() as u64).await?),
            None => None,
        };
        let charge = match &self.fair {
            Some(fair) => Some((
                fair,
                fair.take(device.id, device.owner, jpeg, Instant::now())?,
            )),
            None => None,
        };
        Ok(Ticket {
            charge,
            reservation,
        })
    }

    /// True when the device's clock was probably wrong (or the frame very
    /// late): `captured_at` further from `received_at` than the setting.
    pub fn clock_skewed(&self, captured_at: DateTime<Utc>, received_at: DateTime<Utc>) -> bool {
        self.clock_skew_flag
            .is_some_and(|flag| received_at.signed_duration_since(captured_at).abs() > flag)
    }
}

/// A frame let through. Dropping it (any failure) gives back the quota it
/// reserved; [`Ticket::queue_full`] also gives back its tokens.
pub struct Ticket<'a> {
    charge: Option<(&'a FairShare, Charge)>,
    reservation: Option<Reservation>,
}

impl Ticket<'_> {
    /// The queue had no room: the frame was not detected, so it costs no
    /// share (the device's resend will pay).
    pub fn queue_full(&mut self) {
        if let Some((fair, charge)) = self.charge.take() {
            fair.refund(&charge, Instant::now());
        }
    }

    /// The frame's rows are committed; `new_bytes` is what its image adds to
    /// the owner's usage (0 when it points at an earlier image).
    pub fn stored(self, new_bytes: u64) {
        if let Some(reservation) = self.reservation {
            reservation.commit(new_bytes);
        }
    }
}

/// Forgetting full buckets costs a pass over the map; at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct FairShare {
    device: Budget,
    owner: Budget,
    min_cost: u64,
    max_cost: u64,
    state: Mutex<Buckets>,
}

struct Buckets {
    devices: HashMap<DeviceId, Bucket>,
    owners: HashMap<UserId, Bucket>,
    swept_at: Instant,
}

/// Tokens as of `at`; a missing bucket is a full one.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What a frame took, for a refund.
#[derive(Debug)]
struct Charge {
    device: DeviceId,
    owner: UserId,
    cost: f64,
}

impl Bucket {
    fn level(&self, budget: Budget, now: Instant) -> f64 {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * budget.rate();
        (self.tokens + refill).min(budget.burst())
    }
}

impl Budget {
    fn rate(self) -> f64 {
        self.pixels_per_sec.max(1) as f64
    }

    fn burst(self) -> f64 {
        self.burst_pixels as f64
    }

    /// Whole seconds until `missing` tokens have come in, at least 1.
    fn wait_secs(self, missing: f64) -> u32 {
        let secs = (missing / self.rate()).ceil();
        if secs >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            (secs as u32).max(1)
        }
    }
}

fn level_of<K: Eq + Hash>(
    buckets: &HashMap<K, Bucket>,
    key: &K,
    budget: Budget,
    now: Instant,
) -> f64 {
    buckets
        .get(key)
        .map_or(budget.burst(), |bucket| bucket.level(budget, now))
}

impl FairShare {
    fn new(device: Budget, owner: Budget, min_frame_pixels: u64, max_image_pixels: u64) -> Self {
        Self {
            device,
            owner,
            min_cost: min_frame_pixels,
            max_cost: max_image_pixels,
            state: Mutex::new(Buckets {
                devices: HashMap::new(),
                owners: HashMap::new(),
                swept_at: Instant::now(),
            }),
        }
    }

    fn cost(&self, jpeg: &[u8]) -> f64 {
        let pixels = declared_size(jpeg)
            .map(|(width, height)| u64::from(width) * u64::from(height))
            .filter(|&pixels| pixels > 0)
            .unwrap_or(self.max_cost);
        pixels.max(self.min_cost).min(self.max_cost) as f64
    }

    /// Takes the frame's cost from both buckets, or from neither.
    fn take(
        &self,
        device: DeviceId,
        owner: UserId,
        jpeg: &[u8],
        now: Instant,
    ) -> Result<Charge, OverBudget> {
        let cost = self.cost(jpeg);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.forget_full(self.device, self.owner, now);
        let device_level = level_of(&state.devices, &device, self.device, now);
        let owner_level = level_of(&state.owners, &owner, self.owner, now);
        // A cost above the burst is refused for good otherwise; config
        // validation keeps bursts at or above `max_image_pixels`.
        let device_cost = cost.min(self.device.burst());
        let owner_cost = cost.min(self.owner.burst());
        if device_level < device_cost {
            return Err(OverBudget {
                scope: Scope::Device,
                retry_after_secs: self.device.wait_secs(device_cost - device_level),
            });
        }
        if owner_level < owner_cost {
            return Err(OverBudget {
                scope: Scope::Owner,
                retry_after_secs: self.owner.wait_secs(owner_cost - owner_level),
            });
        }
        state.devices.insert(
            device,
            Bucket {
                tokens: device_level - device_cost,
                at: now,
            },
        );
        state.owners.insert(
            owner,
            Bucket {
                tokens: owner_level - owner_cost,
                at: now,
            },
        );
        Ok(Charge {
            device,
            owner,
            cost,
        })
    }

    fn refund(&self, charge: &Charge, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (device, owner) = (self.device, self.owner);
        if let Some(bucket) = state.devices.get_mut(&charge.device) {
            let level = bucket.level(device, now) + charge.cost.min(device.burst());
            *bucket = Bucket {
                tokens: level.min(device.burst()),
                at: now,
            };
        }
        if let Some(bucket) = state.owners.get_mut(&charge.owner) {
            let level = bucket.level(owner, now) + charge.cost.min(owner.burst());
            *bucket = Bucket {
                tokens: level.min(owner.burst()),
                at: now,
            };
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.devices.len(), state.owners.len())
    }
}

impl Buckets {
    fn forget_full(&mut self, device: Budget, owner: Budget, now: Instant) {
        if now.saturating_duration_since(self.swept_at) < SWEEP_EVERY {
            return;
        }
        self.swept_at = now;
        self.devices
            .retain(|_, bucket| bucket.level(device, now) < device.burst());
        self.owners
            .retain(|_, bucket| bucket.level(owner, now) < owner.burst());
    }
}

/// Width and height from the JPEG's start-of-frame header, walking the
/// marker segments before it: no pixel is decoded and the body is not copied.
/// `None` when there is no readable start-of-frame before the scan data.
pub(crate) fn declared_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2usize;
    loop {
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while *jpeg.get(at)? == 0xFF {
            at += 1;
        }
        let marker = *jpeg.get(at)?;
        at += 1;
        match marker {
            // Markers without a length.
            0x01 | 0xD0..=0xD8 => continue,
            // The end, or the scan data, before any frame header.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*jpeg.get(at)?, *jpeg.get(at + 1)?]));
        if length < 2 {
            return None;
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            // Length, precision, height, width.
            let header = jpeg.get(at..at + 7)?;
            let height = u16::from_be_bytes([header[3], header[4]]);
            let width = u16::from_be_bytes([header[5], header[6]]);
            return Some((u32::from(width), u32::from(height)));
        }
        at = at.checked_add(length)?;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 7) as u8, 60])
        });
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    fn budget(pixels_per_sec: u64, burst_pixels: u64) -> Budget {
        Budget {
            pixels_per_sec,
            burst_pixels,
        }
    }

    #[test]
    fn the_size_is_read_from_the_header_as_the_decoder_reads_it() {
        for (width, height) in [(1, 1), (64, 48), (640, 480), (1000, 3)] {
            let body = jpeg(width, height);
            assert_eq!(declared_size(&body), Some((width, height)));
            let decoded = crate::detect::decode_jpeg(&body, u64::MAX).unwrap();
            assert_eq!(decoded.dimensions(), (width, height));
        }
        assert_eq!(declared_size(b""), None);
        assert_eq!(declared_size(b"\xFF\xD8"), None);
        assert_eq!(declared_size(b"\x89PNG\r\n\x1a\n"), None);
        // A scan before any frame header.
        assert_eq!(declared_size(b"\xFF\xD8\xFF\xDA\x00\x02\xFF\xD9"), None);
    }

    #[test]
    fn a_device_gets_its_burst_then_its_rate() {
        let fair = FairShare::new(budget(100, 1_000), budget(1_000_000, 1_000_000), 0, 1_000);
        let (device, owner) = (DeviceId::new(), UserId::new());
        let frame = jpeg(20, 20); // 400 px
        let t0 = Instant::now();
        assert!(fair.take(device, owner, &frame, t0).is_ok());
        assert!(fair.take(device, owner, &frame, t0).is_ok());
        // 200 left, 400 needed: 2 s at 100 px/s.
        let refused = fair.take(device, owner, &frame, t0).unwrap_err();
        assert_eq!(refused.scope, Scope::Device);
        assert_eq!(refused.retry_after_secs, 2);
        assert!(
            fair.take(device, owner, &frame, t0 + Duration::from_secs(2))
                .is_ok()
        );
        // Another device of another owner is not affected.
        assert!(
            fair.take(DeviceId::new(), UserId::new(), &frame, t0)
                .is_ok()
        );
    }

    #[test]
    fn an_owners_devices_share_one_bucket() {
        let fair = FairShare::new(budget(1_000, 1_000), budget(10, 1_000), 0, 1_000);
        let owner = UserId::new();
        let frame = jpeg(20, 20);
        let t0 = Instant::now();
        assert!(fair.take(DeviceId::new(), owner, &frame, t0).is_ok());
        assert!(fair.take(DeviceId::new(), owner, &frame, t0).is_ok());
        let refused = fair.take(DeviceId::new(), owner, &frame, t0).unwrap_err();
        assert_eq!(refused.scope, Scope::Owner);
        assert_eq!(refused.retry_after_secs, 20);
        // Another owner's device still passes.
        assert!(
            fair.take(DeviceId::new(), UserId::new(), &frame, t0)
                .is_ok()
        );
    }

    #[test]
    fn a_refused_frame_takes_nothing_and_a_refund_gives_back() {
        let fair = FairShare::new(budget(1, 1_000), budget(1, 600), 0, 1_000);
        let (device, owner) = (DeviceId::new(), UserId::new());
        let frame = jpeg(20, 20);
        let t0 = Instant::now();
        let charge = fair.take(device, owner, &frame, t0).unwrap();
        // The owner bucket refuses: the device bucket keeps its 600.
        assert_eq!(
            fair.take(device, owner, &frame, t0).unwrap_err().scope,
            Scope::Owner
        );
        fair.refund(&charge, t0);
        assert!(fair.take(device, owner, &frame, t0).is_ok());
    }

    #[test]
    fn frames_cost_their_pixels_between_the_floor_and_the_largest_size() {
        let fair = FairShare::new(budget(1, 1_000), budget(1, 1_000), 50, 1_000);
        assert_eq!(fair.cost(b"\xFF\xD8garbage"), 1_000.0);
        assert_eq!(fair.cost(&jpeg(100, 100)), 1_000.0);
        assert_eq!(fair.cost(&jpeg(10, 10)), 100.0);
        // Below the floor: charged the floor.
        assert_eq!(fair.cost(&jpeg(5, 5)), 50.0);
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let fair = FairShare::new(budget(1_000, 1_000), budget(1_000, 1_000), 0, 1_000);
        let frame = jpeg(20, 20);
        let t0 = Instant::now();
        for _ in 0..100 {
            fair.take(DeviceId::new(), UserId::new(), &frame, t0)
                .unwrap();
        }
        assert_eq!(fair.tracked(), (100, 100));
        // Refilled after 0.4 s; swept at the next frame a second later.
        let later = t0 + Duration::from_secs(2);
        fair.take(DeviceId::new(), UserId::new(), &frame, later)
            .unwrap();
        assert_eq!(fair.tracked(), (1, 1));
    }

    #[test]
    fn clock_skew_is_flagged_both_ways_past_the_setting() {
        let admission = Admission {
            clock_skew_flag: TimeDelta::try_days(1),
            ..Admission::unlimited()
        };
        let now = Utc::now();
        assert!(!admission.clock_skewed(now - TimeDelta::hours(23), now));
        assert!(admission.clock_skewed(now - TimeDelta::hours(25), now));
        assert!(admission.clock_skewed(DateTime::<Utc>::UNIX_EPOCH, now));
        assert!(admission.clock_skewed(now + TimeDelta::hours(25), now));
        assert!(!Admission::unlimited().clock_skewed(DateTime::<Utc>::UNIX_EPOCH, now));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn the_header_reader_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = declared_size(&body);
                let mut prefixed = vec![0xFF, 0xD8];
                prefixed.extend(body);
                let _ = declared_size(&prefixed);
            }
        }
    }
}
