//! A small cache of rendered query results. When a table changes, every blocking query on it
//! wakes at once and asks the same question of the same snapshot; the first renders the answer
//! and the others share it. Keys include the table index, so entries never go stale: old ones
//! simply fall out.

use std::sync::Mutex;

/// At most `capacity` entries, the most recently used first.
pub struct ResultCache<K, V> {
    entries: Mutex<Vec<(K, V)>>,
    capacity: usize,
}

impl<K: PartialEq, V: Clone> ResultCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        ResultCache {
            entries: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
        }
    }

    /// The cached value for `key`, or the one `compute` returns (cached when it is `Ok`).
    /// Computing holds the lock, so a burst of identical requests renders once.
    pub fn get_or_try<E>(&self, key: K, compute: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = entries.iter().position(|(k, _)| *k == key) {
            let entry = entries.remove(pos);
            let value = entry.1.clone();
            entries.insert(0, entry);
            return Ok(value);
        }
        let value = compute()?;
        entries.insert(0, (key, value.clone()));
        entries.truncate(self.capacity);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_per_key_and_evicts_the_oldest() {
        let cache = ResultCache::new(2);
        let mut calls = 0;
        for _ in 0..3 {
            let v: Result<u32, ()> = cache.get_or_try(1, || {
                calls += 1;
                Ok(10)
            });
            assert_eq!(v, Ok(10));
        }
        assert_eq!(calls, 1);
        let _ = cache.get_or_try(2, || Ok::<_, ()>(20));
        let _ = cache.get_or_try(3, || Ok::<_, ()>(30));
        let v = cache.get_or_try(1, || Ok::<_, ()>(11));
        assert_eq!(v, Ok(11), "key 1 was evicted");
    }

    #[test]
    fn errors_are_not_cached() {
        let cache: ResultCache<u8, u8> = ResultCache::new(2);
        assert_eq!(cache.get_or_try(1, || Err("no")), Err("no"));
        assert_eq!(cache.get_or_try(1, || Ok::<_, &str>(5)), Ok(5));
    }
}
