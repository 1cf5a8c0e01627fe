//! One sorting routine for the whole SDK: every `sort_by` on another
//! element type or comparator is a copy of the standard library's sort in
//! the wasm (about 3.5 KB each), so lists are sorted through their indices.

use std::cmp::Ordering;

/// The indices of `len` items in the order `cmp` (comparing two items by
/// index) sorts them; stable, as `sort_by` is.
pub(crate) fn sorted_order(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| cmp(a, b));
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
}
