//! Text-quality metrics of generated text (seed 001's scores), each defined exactly in
//! docs/metrics.md and computed here from the text alone (word formation also needs the
//! training text's words).

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

/// Scores of one text. The four `*_score` fields are 0–100; `overall` is their mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextQuality {
    /// Share of characters that are letters, digits, whitespace or common punctuation,
    /// times one minus the share of characters inside runs of 4+ identical characters.
    pub character_coherence: f64,
    /// Share of words found in the training vocabulary (`None` when no vocabulary was given).
    pub word_formation: Option<f64>,
    /// Mean of: sentences starting with a capital, sentences of 3–40 words, and punctuation
    /// sanity (one minus bad spacing/punctuation patterns per word, floored at 0).
    pub structure: f64,
    /// 100 × mean(distinct-1, distinct-2, 1 − repetition rate).
    pub diversity: f64,
    /// Unique words / words.
    pub distinct_1: f64,
    /// Unique word bigrams / bigrams.
    pub distinct_2: f64,
    /// Share of word 4-grams that already occurred earlier in the text.
    pub repetition_rate: f64,
    /// Words in the text.
    pub words: usize,
    /// Mean of the available 0–100 scores.
    pub overall: f64,
}

/// The set of words of a training text, for the word-formation score.
#[derive(Debug, Clone, Default)]
pub struct WordVocabulary(HashSet<String>);

impl WordVocabulary {
    /// Every word of `text` (see [`words`]).
    pub fn from_text(text: &str) -> Self {
        Self(words(text).into_iter().collect())
    }

    /// Whether `word` (lowercase) occurs in the training text.
    pub fn contains(&self, word: &str) -> bool {
        self.0.contains(word)
    }

    /// Distinct words known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no word is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Lowercase words of `text`: maximal runs of letters, digits and inner apostrophes.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(['\'', '’']).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Scores `text`; word formation needs `vocabulary`.
pub fn text_quality(text: &str, vocabulary: Option<&WordVocabulary>) -> TextQuality {
    let words = words(text);
    let character_coherence = 100.0 * character_coherence(text);
    let word_formation = vocabulary.map(|v| 100.0 * share(words.iter().filter(|w| v.contains(w)).count(), words.len()));
    let structure = 100.0 * structure(text, words.len());
    let distinct_1 = share(words.iter().collect::<BTreeSet<_>>().len(), words.len());
    let bigrams: Vec<_> = words.windows(2).collect();
    let distinct_2 = share(bigrams.iter().collect::<BTreeSet<_>>().len(), bigrams.len());
    let repetition_rate = repetition_rate(&words, 4);
    let diversity = 100.0 * (distinct_1 + distinct_2 + 1.0 - repetition_rate) / 3.0;
    let scores: Vec<f64> =
        [Some(character_coherence), word_formation, Some(structure), Some(diversity)].into_iter().flatten().collect();
    let overall = scores.iter().sum::<f64>() / scores.len() as f64;
    TextQuality {
        character_coherence,
        word_formation,
        structure,
        diversity,
        distinct_1,
        distinct_2,
        repetition_rate,
        words: words.len(),
        overall,
    }
}

/// `part / whole`, 0 when `whole` is 0.
fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

fn character_coherence(text: &str) -> f64 {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return 0.0;
    }
    let usual = |c: char| c.is_alphanumeric() || c.is_whitespace() || ".,;:!?'\"-()’“”".contains(c);
    let usual_share = share(chars.iter().filter(|&&c| usual(c)).count(), chars.len());
    let mut in_long_runs = 0;
    let mut start = 0;
    for i in 1..=chars.len() {
        if i == chars.len() || chars[i] != chars[start] {
            if i - start >= 4 {
                in_long_runs += i - start;
            }
            start = i;
        }
    }
    usual_share * (1.0 - share(in_long_runs, chars.len()))
}

fn structure(text: &str, word_count: usize) -> f64 {
    let sentences: Vec<&str> =
        text.split_inclusive(['.', '!', '?']).map(str::trim).filter(|s| s.chars().any(char::is_alphanumeric)).collect();
    if sentences.is_empty() {
        return 0.0;
    }
    let capitalised =
        sentences.iter().filter(|s| s.chars().find(|c| c.is_alphabetic()).is_some_and(char::is_uppercase));
    let sized = sentences.iter().filter(|s| (3..=40).contains(&words(s).len()));
    let bad_patterns = ["  ", " ,", " .", " !", " ?", ",,", ",.", ".,", "!!!", "???", "....."];
    let bad: usize = bad_patterns.iter().map(|p| text.matches(p).count()).sum();
    let sanity = (1.0 - share(bad, word_count.max(1))).max(0.0);
    (share(capitalised.count(), sentences.len()) + share(sized.count(), sentences.len()) + sanity) / 3.0
}

fn repetition_rate(words: &[String], n: usize) -> f64 {
    let mut seen = HashSet::new();
    let grams: Vec<&[String]> = words.windows(n).collect();
    let repeats = grams.iter().filter(|g| !seen.insert(**g)).count();
    share(repeats, grams.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_prose_scores_high_and_noise_scores_low() {
        let vocab = WordVocabulary::from_text("the cat sat on a mat and then it ran to the red door");
        let good = text_quality("The cat sat on a mat. Then it ran to the red door!", Some(&vocab));
        assert_eq!(good.word_formation, Some(100.0));
        assert!((good.character_coherence - 100.0).abs() < 1e-9);
        assert!((good.structure - 100.0).abs() < 1e-9, "{good:?}");
        assert!(good.overall > 90.0, "{good:?}");
        let noise = text_quality("q3x#mz9!pFgW@8kLnR4vY7cE2sA1 zzzzzzzz", Some(&vocab));
        assert!(noise.word_formation == Some(0.0) && noise.character_coherence < 75.0, "{noise:?}");
        assert!(noise.overall < good.overall - 30.0, "{noise:?}");
    }

    #[test]
    fn diversity_counts_distinct_words_and_repeats() {
        let q = text_quality("a b a b a b", None);
        assert_eq!((q.distinct_1, q.distinct_2), (2.0 / 6.0, 2.0 / 5.0));
        // 4-grams: abab, baba, abab → one repeat of three.
        assert!((q.repetition_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(q.word_formation, None);
        assert_eq!(words("Don't stop—it's 2 o’clock."), ["don't", "stop", "it's", "2", "o’clock"]);
    }
}
