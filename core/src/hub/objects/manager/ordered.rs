//! An insertion-ordered map of encoded keys to encoded values.
//!
//! Entries live in a `Vec` in insertion order, with a `HashMap` from key to position.
//! Removing an entry leaves a hole (`None`), so positions of the others stay valid; when
//! holes outnumber live entries the vector is compacted and the index rebuilt (amortised
//! O(1) per removal). Overwriting a key keeps its position, as in Python's dict.

use std::collections::HashMap;

use serde_bytes::ByteBuf;

#[derive(Debug, Default)]
pub(crate) struct OrderedMap {
    entries: Vec<Option<(ByteBuf, ByteBuf)>>,
    index: HashMap<Vec<u8>, usize>,
}

impl OrderedMap {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn get(&self, key: &[u8]) -> Option<&ByteBuf> {
        let &pos = self.index.get(key)?;
        self.entries[pos].as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut ByteBuf> {
        let &pos = self.index.get(key)?;
        self.entries[pos].as_mut().map(|(_, v)| v)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.index.contains_key(key)
    }

    /// Inserts or overwrites; returns the old value.
    pub fn insert(&mut self, key: ByteBuf, value: ByteBuf) -> Option<ByteBuf> {
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        self.index.insert(key.to_vec(), self.entries.len());
        self.entries.push(Some((key, value)));
        None
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<ByteBuf> {
        let pos = self.index.remove(key)?;
        let (_, v) = self.entries[pos].take()?;
        self.trim();
        Some(v)
    }

    /// Removes the most recently inserted entry.
    pub fn pop_last(&mut self) -> Option<(ByteBuf, ByteBuf)> {
        while let Some(e) = self.entries.pop() {
            if let Some((k, v)) = e {
                self.index.remove(k.as_slice());
                self.trim();
                return Some((k, v));
            }
        }
        None
    }

    pub fn clear(&mut self) {
        self.entries = Vec::new();
        self.index = HashMap::new();
    }

    pub fn iter(&self) -> impl Iterator<Item = &(ByteBuf, ByteBuf)> {
        self.entries.iter().flatten()
    }

    /// Drops trailing holes, and compacts when holes outnumber live entries.
    fn trim(&mut self) {
        while matches!(self.entries.last(), Some(None)) {
            self.entries.pop();
        }
        if self.entries.len() > 16 && self.index.len() * 2 < self.entries.len() {
            self.entries.retain(Option::is_some);
            for (pos, e) in self.entries.iter().enumerate() {
                if let Some((k, _)) = e {
                    if let Some(p) = self.index.get_mut(k.as_slice()) {
                        *p = pos;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> ByteBuf {
        ByteBuf::from(s.as_bytes().to_vec())
    }

    #[test]
    fn order_overwrite_remove_compact() {
        let mut m = OrderedMap::default();
        for i in 0..100 {
            assert!(m.insert(b(&format!("k{i}")), b(&i.to_string())).is_none());
        }
        assert_eq!(m.insert(b("k5"), b("five")), Some(b("5")));
        for i in (0..100).filter(|i| i % 3 != 0) {
            assert!(m.remove(format!("k{i}").as_bytes()).is_some());
        }
        let keys: Vec<_> = m.iter().map(|(k, _)| k.clone()).collect();
        let want: Vec<_> = (0..100).filter(|i| i % 3 == 0).map(|i| b(&format!("k{i}"))).collect();
        assert_eq!(keys, want);
        assert_eq!(m.len(), want.len());
        assert_eq!(m.get(b"k99"), Some(&b("99")));
        assert_eq!(m.pop_last(), Some((b("k99"), b("99"))));
        assert_eq!(m.pop_last().map(|(k, _)| k), Some(b("k96")));
        assert!(m.remove(b"nope").is_none());
        m.clear();
        assert_eq!(m.len(), 0);
        assert!(m.pop_last().is_none());
    }
}
