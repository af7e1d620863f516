//! A map whose entries have deadlines, indexed by deadline.
//!
//! At a thousand calls a second the endpoint holds tens of thousands of transactions
//! (a finished non-INVITE server transaction lingers 32 s for timer J). Scanning them all
//! for the earliest timer, and again for finished ones, after every message made the
//! endpoint quadratic. Here an entry is looked at only when it was touched (`get_mut`,
//! `insert`) or its deadline has come.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// What `TimedMap` needs to know of an entry.
pub(super) trait Deadline {
    /// When the entry next needs `handle_timeout`; `None` while it waits for nothing.
    fn deadline(&self) -> Option<Instant>;
    /// A finished entry is dropped at the next `refresh`.
    fn is_done(&self) -> bool {
        false
    }
}

pub(super) struct TimedMap<K, V> {
    /// Each entry with the deadline it is indexed under.
    entries: BTreeMap<K, (V, Option<Instant>)>,
    by_deadline: BTreeSet<(Instant, K)>,
    /// Entries that may have changed since they were indexed.
    touched: BTreeSet<K>,
}

impl<K: Ord + Clone, V: Deadline> TimedMap<K, V> {
    pub(super) fn new() -> Self {
        TimedMap {
            entries: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
            touched: BTreeSet::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// The entry, which is indexed again at the next `refresh`.
    pub(super) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let (v, _) = self.entries.get_mut(key)?;
        self.touched.insert(key.clone());
        Some(v)
    }

    pub(super) fn insert(&mut self, key: K, value: V) {
        self.remove(&key);
        self.touched.insert(key.clone());
        self.entries.insert(key, (value, None));
    }

    pub(super) fn remove(&mut self, key: &K) -> Option<V> {
        let (v, indexed) = self.entries.remove(key)?;
        if let Some(at) = indexed {
            self.by_deadline.remove(&(at, key.clone()));
        }
        self.touched.remove(key);
        Some(v)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.values().map(|(v, _)| v)
    }

    /// The earliest deadline of any entry.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let indexed = self.by_deadline.first().map(|(at, _)| *at);
        let touched = self
            .touched
            .iter()
            .filter_map(|k| self.entries.get(k)?.0.deadline());
        indexed.into_iter().chain(touched).min()
    }

    /// Keys whose deadline has come, earliest first; the caller will `get_mut` them.
    pub(super) fn due(&mut self, now: Instant) -> Vec<K> {
        self.refresh();
        self.by_deadline
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Indexes the touched entries again and drops the finished ones.
    pub(super) fn refresh(&mut self) {
        for key in std::mem::take(&mut self.touched) {
            let Some((v, indexed)) = self.entries.get_mut(&key) else {
                continue;
            };
            if let Some(at) = indexed.take() {
                self.by_deadline.remove(&(at, key.clone()));
            }
            if v.is_done() {
                self.entries.remove(&key);
                continue;
            }
            *indexed = v.deadline();
            if let Some(at) = *indexed {
                self.by_deadline.insert((at, key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Entry {
        at: Option<Instant>,
        done: bool,
    }

    impl Deadline for Entry {
        fn deadline(&self) -> Option<Instant> {
            self.at
        }
        fn is_done(&self) -> bool {
            self.done
        }
    }

    #[test]
    fn deadlines_follow_changes_and_finished_entries_go() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut m = TimedMap::new();
        m.insert(
            1,
            Entry {
                at: Some(ms(500)),
                done: false,
            },
        );
        m.insert(
            2,
            Entry {
                at: Some(ms(100)),
                done: false,
            },
        );
        m.insert(
            3,
            Entry {
                at: None,
                done: false,
            },
        );
        // Seen before any refresh.
        assert_eq!(m.next_deadline(), Some(ms(100)));
        m.refresh();
        assert_eq!(m.next_deadline(), Some(ms(100)));
        assert_eq!(m.due(ms(99)), Vec::<i32>::new());
        assert_eq!(m.due(ms(500)), vec![2, 1]);

        // A change through get_mut counts at once, and after the refresh.
        if let Some(e) = m.get_mut(&3) {
            e.at = Some(ms(50));
        }
        assert_eq!(m.next_deadline(), Some(ms(50)));
        if let Some(e) = m.get_mut(&2) {
            e.done = true;
        }
        m.refresh();
        assert!(!m.contains_key(&2));
        assert_eq!(m.len(), 2);
        assert_eq!(m.due(ms(1000)), vec![3, 1]);

        assert!(m.remove(&3).is_some());
        assert_eq!(m.next_deadline(), Some(ms(500)));
        assert!(m.remove(&1).is_some());
        assert_eq!(m.next_deadline(), None);
    }
}
