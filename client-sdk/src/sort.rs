//! One sorting routine for the whole SDK: every `sort_by` on another
//! element type or comparator is a copy of the standard library's sort in
//! the wasm (about 3.5 KB each), so lists are sorted through their indices.

use std::cmp::Ordering;

/// The indices of `len` items in the order `cmp` (comparing two items by
/// index) sorts them; stable, as `sort_by` is. A bottom-up merge sort: the
/// standard sort, even instantiated once, is 3.3 KB of the wasm (its
/// small-sort networks and pivot selection), this is a few hundred bytes;
/// the lists sorted (members, read positions) are short.
pub(crate) fn sorted_order(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut merged = vec![0; len];
    let mut width = 1;
    while width < len {
        let mut start = 0;
        while start < len {
            let mid = (start + width).min(len);
            let end = (start + 2 * width).min(len);
            let (mut left, mut right) = (start, mid);
            for slot in &mut merged[start..end] {
                // The left run wins ties: equal items keep their order.
                let from_left = left < mid
                    && (right == end || cmp(order[right], order[left]) != Ordering::Less);
                let from = if from_left { &mut left } else { &mut right };
                *slot = order[*from];
                *from += 1;
            }
            start = end;
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    order
}

/// Sorts `items` by `cmp`, stably, through [`sorted_order`].
pub(crate) fn sort_by<T>(items: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_order(items.len(), &|a, b| cmp(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_the_standard_sort() {
        let pairs: Vec<(u8, usize)> =
            [3u8, 1, 2, 1, 3, 0, 2, 2].iter().enumerate().map(|(i, &k)| (k, i)).collect();
        let mut ours = pairs.clone();
        sort_by(&mut ours, |a, b| a.0.cmp(&b.0));
        let mut std = pairs;
        std.sort_by_key(|a| a.0);
        assert_eq!(ours, std);
        let mut empty: Vec<u8> = Vec::new();
        sort_by(&mut empty, Ord::cmp);
        assert!(empty.is_empty());
    }

    // proptest is a native dev-dependency only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// Any list, with many equal keys: the same order as the standard
        /// (stable) sort.
        #[test]
        fn agrees_with_the_standard_sort(keys in proptest::collection::vec(0u8..8, 0..200)) {
            let pairs: Vec<(u8, usize)> = keys.iter().enumerate().map(|(i, &k)| (k, i)).collect();
            let mut ours = pairs.clone();
            sort_by(&mut ours, |a, b| a.0.cmp(&b.0));
            let mut std = pairs;
            std.sort_by_key(|a| a.0);
            proptest::prop_assert_eq!(ours, std);
        }
    }
}
