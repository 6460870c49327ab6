//! Character-trigram similarity of two texts (the continual-learning system's text check):
//! the cosine of their trigram count vectors, 1 for the same distribution, 0 for none shared.

use std::collections::HashMap;

/// How often each run of three characters occurs in a text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrigramProfile(HashMap<[char; 3], u64>);

impl TrigramProfile {
    /// The trigram counts of `text`, over its characters as they are (case and spacing kept).
    pub fn from_text(text: &str) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut counts = HashMap::new();
        for window in chars.windows(3) {
            *counts.entry([window[0], window[1], window[2]]).or_insert(0) += 1;
        }
        Self(counts)
    }

    /// Cosine similarity of the two count vectors, in [0, 1]; 0 when either text has no trigram.
    pub fn cosine(&self, other: &Self) -> f64 {
        let norm = |p: &Self| p.0.values().map(|&c| (c as f64).powi(2)).sum::<f64>().sqrt();
        let (small, large) = if self.0.len() <= other.0.len() { (self, other) } else { (other, self) };
        let shared = small.0.iter().filter_map(|(t, &c)| large.0.get(t).map(|&d| c as f64 * d as f64));
        // A fold from +0: an empty `sum` of floats is −0.
        let dot = shared.fold(0.0, |total, product| total + product);
        let norms = norm(self) * norm(other);
        if norms == 0.0 { 0.0 } else { dot / norms }
    }
}

/// The trigram cosine similarity of `text` and `reference`.
pub fn trigram_similarity(text: &str, reference: &str) -> f64 {
    TrigramProfile::from_text(text).cosine(&TrigramProfile::from_text(reference))
}

/// `reference`'s first half of characters against its second half: what a text drawn from the
/// same source scores, the ceiling for generated text of about half its length.
pub fn halves_similarity(reference: &str) -> f64 {
    let middle = reference.char_indices().nth(reference.chars().count() / 2).map_or(reference.len(), |(i, _)| i);
    trigram_similarity(&reference[..middle], &reference[middle..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_is_one_and_disjoint_texts_are_zero() {
        assert!((trigram_similarity("the cat sat", "the cat sat") - 1.0).abs() < 1e-12);
        let disjoint = trigram_similarity("abcabc", "xyzxyz");
        assert!(disjoint == 0.0 && disjoint.is_sign_positive(), "{disjoint}");
        assert_eq!(trigram_similarity("ab", "the cat"), 0.0);
    }

    #[test]
    fn counts_weigh_as_a_cosine() {
        // "aaaa" has aaa twice; "aaab" has aaa and aab once: (2·1) / (2 · √2).
        let expected = 2.0 / (2.0 * 2f64.sqrt());
        assert!((trigram_similarity("aaaa", "aaab") - expected).abs() < 1e-12);
        let prose = "the cat sat on the mat and the dog sat on the log. ".repeat(4);
        assert!(halves_similarity(&prose) > 0.9, "a repeated text is like its own halves");
        assert!(trigram_similarity("zq#x!v", &prose) < 0.1);
    }
}
