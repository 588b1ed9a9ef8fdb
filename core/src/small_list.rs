//! A list on the stack while it is short, on the heap beyond.
//!
//! The extension's verify path forms two short lists a call (the required
//! scopes and the key's stored scopes); with these it allocates nothing.

/// A list kept on the stack while it is short (required scopes and a key's
/// scopes are a handful), on the heap beyond: verify forms its lists
/// without allocating.
pub struct SmallList<T> {
    inline: [T; SMALL_LIST_INLINE],
    len: usize,
    heap: Vec<T>,
}

const SMALL_LIST_INLINE: usize = 16;

impl<T: Copy + Default> SmallList<T> {
    pub fn new() -> Self {
        SmallList {
            inline: [T::default(); SMALL_LIST_INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    pub fn push(&mut self, item: T) {
        if self.heap.is_empty() && self.len < SMALL_LIST_INLINE {
            self.inline[self.len] = item;
            self.len += 1;
            return;
        }
        if self.heap.is_empty() {
            self.heap.extend_from_slice(&self.inline[..self.len]);
        }
        self.heap.push(item);
    }
}

impl<T: Copy + Default> Default for SmallList<T> {
    fn default() -> Self {
        SmallList::new()
    }
}

impl<T: Copy + Default> FromIterator<T> for SmallList<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut list = SmallList::new();
        items.into_iter().for_each(|item| list.push(item));
        list
    }
}

impl<T> std::ops::Deref for SmallList<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SmallList;

    #[test]
    fn small_list_keeps_order_on_the_stack_and_past_it() {
        for n in [0usize, 1, 15, 16, 17, 40] {
            let list: SmallList<usize> = (0..n).collect();
            assert_eq!(&*list, &(0..n).collect::<Vec<_>>()[..], "n = {n}");
            assert_eq!(list.heap.is_empty(), n <= 16, "n = {n}");
        }
    }
}
