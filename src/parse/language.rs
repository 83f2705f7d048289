//! An entry's language (docs/CONFIG.md "Languages"): the one the feed
//! states (Atom `xml:lang`, RSS `<language>`, JSON Feed `language`) when it
//! is a well-formed BCP 47 tag, else the one its text is written in, told by
//! whatlang's trigram model (offline, deterministic, ~70 languages).

use crate::text::html_to_text;

/// Text read to tell the language: whatlang's accuracy stops improving
/// well before this, and its cost grows with the text.
const DETECT_CHARS: usize = 600;
/// HTML read from a body to get that much text (markup is most of it).
const DETECT_HTML_BYTES: usize = 8 * 1024;
/// Below this much text a guess is a coin toss: say nothing.
const MIN_DETECT_CHARS: usize = 40;

/// What whatlang makes of one entry's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Guess {
    /// ISO 639-1.
    pub code: &'static str,
    /// Confident on this text alone.
    pub reliable: bool,
}

/// Fills in the language of `entries` without one. A confident guess is
/// taken; a hesitant one (a headline alone, say) only when it names the
/// language most of the feed's confident guesses agree on: feeds are
/// mostly written in one language.
pub fn fill(entries: &mut [crate::model::Entry]) {
    fill_new(entries, &[], &[]);
}

/// [`fill`] for a refresh whose entries may be stored already: entries
/// whose `known` flag is set are not read (the store keeps the language it has
/// for them), and `stored`, the languages stored for them, count as
/// confident guesses when the feed's language is settled.
pub fn fill_new(entries: &mut [crate::model::Entry], known: &[bool], stored: &[&str]) {
    let guesses: Vec<Option<Guess>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| match e.language {
            Some(_) => None,
            None if known.get(i) == Some(&true) => None,
            None => guess(
                e.title.as_deref(),
                e.summary.as_deref(),
                e.content.as_deref(),
            ),
        })
        .collect();
    let mut confident: Vec<&str> = guesses
        .iter()
        .flatten()
        .filter(|g| g.reliable)
        .map(|g| g.code)
        .chain(stored.iter().map(|code| primary_subtag(code)))
        .collect();
    confident.sort_unstable();
    let dominant = confident
        .chunk_by(|a, b| a == b)
        .max_by_key(|run| run.len())
        .filter(|run| run.len() * 3 >= confident.len() * 2)
        .map(|run| run[0]);
    for (entry, guess) in entries.iter_mut().zip(guesses) {
        if let Some(guess) = guess {
            if guess.reliable || Some(guess.code) == dominant {
                entry.language = Some(guess.code.to_string());
            }
        }
    }
}

/// `fr` of `fr-CA`: guesses name languages, not regions.
fn primary_subtag(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// The language `title`, `summary` and `content` (HTML) are written in, as
/// an ISO 639-1 code, when whatlang is confident; `None` for short or mixed
/// text.
#[cfg(test)]
fn detect(title: Option<&str>, summary: Option<&str>, content: Option<&str>) -> Option<String> {
    guess(title, summary, content)
        .filter(|g| g.reliable)
        .map(|g| g.code.to_string())
}

/// whatlang's guess at the language of `title`, `summary` and `content`
/// (HTML); `None` when there is too little text to guess at all.
fn guess(title: Option<&str>, summary: Option<&str>, content: Option<&str>) -> Option<Guess> {
    let mut text = String::with_capacity(DETECT_CHARS + 64);
    for part in [title, summary].into_iter().flatten() {
        text.push_str(part);
        text.push_str(". ");
    }
    if text.chars().count() < DETECT_CHARS {
        if let Some(html) = content {
            let head = super::limits::cut_text(html, DETECT_HTML_BYTES).unwrap_or(html);
            text.push_str(&html_to_text(head));
        }
    }
    let end = text
        .char_indices()
        .nth(DETECT_CHARS)
        .map_or(text.len(), |(i, _)| i);
    let text = &text[..end];
    if text.chars().filter(|c| c.is_alphabetic()).count() < MIN_DETECT_CHARS {
        return None;
    }
    let info = whatlang::detect(text)?;
    Some(Guess {
        code: iso639_1(info.lang()),
        reliable: info.is_reliable(),
    })
}

/// whatlang names languages by ISO 639-3; feeds and readers use the
/// two-letter ISO 639-1 code every one of them has.
fn iso639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Epo => "eo",
        Eng => "en",
        Rus => "ru",
        Cmn => "zh",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Ben => "bn",
        Fra => "fr",
        Deu => "de",
        Ukr => "uk",
        Kat => "ka",
        Ara => "ar",
        Hin => "hi",
        Jpn => "ja",
        Heb => "he",
        Yid => "yi",
        Pol => "pl",
        Amh => "am",
        Jav => "jv",
        Kor => "ko",
        Nob => "nb",
        Dan => "da",
        Swe => "sv",
        Fin => "fi",
        Tur => "tr",
        Nld => "nl",
        Hun => "hu",
        Ces => "cs",
        Ell => "el",
        Bul => "bg",
        Bel => "be",
        Mar => "mr",
        Kan => "kn",
        Ron => "ro",
        Slv => "sl",
        Hrv => "hr",
        Srp => "sr",
        Mkd => "mk",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tam => "ta",
        Vie => "vi",
        Urd => "ur",
        Tha => "th",
        Guj => "gu",
        Uzb => "uz",
        Pan => "pa",
        Aze => "az",
        Ind => "id",
        Tel => "te",
        Pes => "fa",
        Mal => "ml",
        Ori => "or",
        Mya => "my",
        Nep => "ne",
        Sin => "si",
        Khm => "km",
        Tuk => "tk",
        Aka => "ak",
        Zul => "zu",
        Sna => "sn",
        Afr => "af",
        Lat => "la",
        Slk => "sk",
        Cat => "ca",
        Tgl => "tl",
        Hye => "hy",
        Cym => "cy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_news_prose_and_declines_scraps() {
        let fr = detect(
            Some("Wang Yi reçoit Sergueï Lavrov à Pékin"),
            Some("Le ministre chinois des Affaires étrangères a reçu son homologue russe pour des entretiens sur la guerre en Ukraine et les relations avec l'Otan."),
            None,
        );
        assert_eq!(fr.as_deref(), Some("fr"));
        let en = detect(
            Some("Wang Yi meets Sergei Lavrov"),
            None,
            Some("<p>China's foreign minister received his Russian counterpart in Beijing on Tuesday for talks on the war in Ukraine.</p>"),
        );
        assert_eq!(en.as_deref(), Some("en"));
        let ru = detect(
            Some("Ван И встретился с Сергеем Лавровым"),
            Some("Министр иностранных дел Китая принял своего российского коллегу в Пекине для переговоров."),
            None,
        );
        assert_eq!(ru.as_deref(), Some("ru"));
        assert_eq!(detect(Some("Podcast #42"), None, None), None);
        assert_eq!(detect(None, None, Some("<img src=x><p>OK</p>")), None);
    }

    #[test]
    fn reads_only_the_head_of_a_huge_body() {
        let body = format!(
            "<p>{}</p>",
            "Les négociations se poursuivent à Genève entre les délégations. ".repeat(20_000)
        );
        assert_eq!(detect(None, None, Some(&body)).as_deref(), Some("fr"));
    }

    /// A refresh's known entries are not read, and their stored languages
    /// settle the feed's, so a lone new headline in it keeps its hesitant
    /// guess; without them, the guess is dropped.
    #[test]
    fn stored_languages_vote_and_known_entries_are_not_read() {
        let entry = |title: &str, summary: &str| crate::model::Entry {
            title: Some(title.into()),
            summary: Some(summary.into()),
            ..crate::model::Entry::default()
        };
        let hesitant = "Grève des transports: la circulation reste perturbée";
        let known_text = "Le gouvernement annonce un plan pour les hôpitaux publics";
        let fresh = || vec![entry("Grève", hesitant), entry("Plan", known_text)];
        assert_eq!(
            guess(Some("Grève"), Some(hesitant), None).map(|g| (g.code, g.reliable)),
            Some(("fr", false))
        );

        let mut entries = fresh();
        fill_new(&mut entries, &[false, true], &["fr-FR", "fr", "fr"]);
        assert_eq!(entries[0].language.as_deref(), Some("fr"));
        assert_eq!(entries[1].language, None, "a known entry is not read");

        let mut entries = fresh();
        fill_new(&mut entries, &[false, true], &[]);
        assert_eq!(entries[0].language, None, "a lone hesitant guess");

        let mut entries = fresh();
        fill_new(&mut entries, &[false, true], &["de", "de", "de"]);
        assert_eq!(entries[0].language, None, "the feed's language is another");
    }
}
