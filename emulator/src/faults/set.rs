//! The faults in effect: matching, counters and the seeded generators behind `probability`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Endpoint, Fault, FaultAction, FaultError, FaultStatus};

/// What a request looks like to the matchers.
#[derive(Debug, Default)]
pub(crate) struct FaultRequest<'a> {
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) resource: Option<&'a str>,
}

/// A fault chosen for a request.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    /// `#id name-or-action`, for the request log.
    pub(crate) label: String,
    pub(crate) action: FaultAction,
}

struct Active {
    id: u64,
    fault: Fault,
    remaining: Option<u64>,
    hits: u64,
    rng: Option<StdRng>,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("id", &self.id)
            .field("fault", &self.fault)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

fn matches(want: Option<&str>, have: Option<&str>) -> bool {
    match want {
        None => true,
        Some(want) => have.is_some_and(|h| h.eq_ignore_ascii_case(want)),
    }
}

impl Active {
    fn matches(&self, req: &FaultRequest<'_>) -> bool {
        let m = &self.fault.matcher;
        if self.remaining == Some(0) {
            return false;
        }
        if m.endpoint.is_some() && m.endpoint != req.endpoint {
            return false;
        }
        if req.endpoint.is_none() {
            return false;
        }
        matches(m.tenant.as_deref(), req.tenant)
            && matches(m.client_id.as_deref(), req.client_id)
            && m.resource.as_deref().is_none_or(|want| {
                req.resource.is_some_and(|have| {
                    have.to_ascii_lowercase()
                        .contains(&want.to_ascii_lowercase())
                })
            })
    }
}

/// The faults in effect.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    any: AtomicBool,
    next_id: AtomicU64,
    active: Mutex<Vec<Active>>,
}

impl FaultSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any fault is installed (the fast path skips matching when none is).
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Relaxed)
    }

    /// Installs a fault; returns its id.
    pub(crate) fn add(&self, fault: Fault) -> Result<u64, FaultError> {
        fault.validate()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let rng = fault.probability.map(|_| match fault.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        });
        let mut active = self.lock();
        active.push(Active {
            id,
            remaining: fault.times,
            fault,
            hits: 0,
            rng,
        });
        self.any.store(true, Ordering::Relaxed);
        Ok(id)
    }

    /// Replaces every fault with `faults`.
    pub(crate) fn replace(&self, faults: &[Fault]) -> Result<(), FaultError> {
        for fault in faults {
            fault.validate()?;
        }
        self.clear();
        for fault in faults {
            self.add(fault.clone())?;
        }
        Ok(())
    }

    /// Removes one fault; false when there was none with `id`.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut active = self.lock();
        let before = active.len();
        active.retain(|a| a.id != id);
        self.any.store(!active.is_empty(), Ordering::Relaxed);
        active.len() != before
    }

    /// Removes every fault.
    pub(crate) fn clear(&self) {
        let mut active = self.lock();
        active.clear();
        self.any.store(false, Ordering::Relaxed);
    }

    /// The faults and their counters.
    pub(crate) fn list(&self) -> Vec<FaultStatus> {
        self.lock()
            .iter()
            .map(|a| FaultStatus {
                id: a.id,
                fault: a.fault.clone(),
                remaining: a.remaining,
                hits: a.hits,
            })
            .collect()
    }

    /// The fault that fires for `req`, if any, counting the hit.
    pub(crate) fn select(&self, req: &FaultRequest<'_>) -> Option<Selected> {
        let mut active = self.lock();
        for a in active.iter_mut() {
            if !a.matches(req) {
                continue;
            }
            if let (Some(p), Some(rng)) = (a.fault.probability, a.rng.as_mut())
                && rng.random::<f64>() >= p
            {
                continue;
            }
            if let Some(n) = a.remaining.as_mut() {
                *n -= 1;
            }
            a.hits += 1;
            return Some(Selected {
                label: a.fault.label(a.id),
                action: a.fault.action.clone(),
            });
        }
        None
    }
}
