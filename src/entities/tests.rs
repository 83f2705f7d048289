use super::*;

fn entry(title: &str, summary: &str, content: &str) -> Entry {
    Entry {
        title: Some(title.to_string()),
        summary: (!summary.is_empty()).then(|| summary.to_string()),
        content: (!content.is_empty()).then(|| content.to_string()),
        ..Entry::default()
    }
}

fn labels(entry: &Entry) -> Vec<String> {
    entities_for(entry, LabelCase::Upper)
        .into_iter()
        .map(|f| f.tag.label)
        .collect()
}

#[test]
fn stop_lists_are_sorted_for_binary_search() {
    for list in [
        FUNCTION_WORDS,
        ROLES,
        INSTITUTIONS,
        NOT_NAMES,
        PARTICLES,
        SAID,
        ORG_HEADS,
        CONNECTORS,
        NAME_OPENERS,
    ] {
        assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
    }
}

/// The rfi.fr-style story of config/samples/newsroom-sample.xml, without
/// its categories.
fn sample_story() -> Entry {
    entry(
        "China's Wang Yi meets Sergei Lavrov in Moscow ahead of Xi Jinping's visit",
        "China's foreign minister Wang Yi held talks in Moscow with his Russian counterpart Sergei Lavrov, preparing a state visit by President Xi Jinping.",
        "<p>China's foreign minister <strong>Wang Yi</strong> held talks in Moscow on Monday with his Russian counterpart <strong>Sergei Lavrov</strong>, preparing a state visit by President Xi Jinping later this month.</p>\n<p>The two ministers discussed trade, energy and the war in Ukraine, according to a statement from the Russian foreign ministry. Beijing's foreign ministry spokesman Guo Jiakun said the talks were \"candid and productive\".</p>\n<p>This is a sample story shipped with tributary: it shows what a republished article carries (category, tags, author, summary and body) before any real source has been fetched.</p>",
    )
}

#[test]
fn the_sample_story_gets_its_places_regions_and_people() {
    let found = labels(&sample_story());
    assert_eq!(
        found,
        [
            "CHINA",
            "ASIA",
            "MOSCOW",
            "EUROPE",
            "RUSSIA",
            "UKRAINE",
            "BEIJING",
            "WANG YI",
            "SERGEI LAVROV",
            "XI JINPING",
            "GUO JIAKUN"
        ]
    );
}

#[test]
fn a_story_in_the_seeds_shape_gets_every_tag_the_issue_lists() {
    // The issue's seed story: the aggregator's tags, from text alone.
    let story = entry(
        "Wang Yi meets Lavrov in Moscow as Beijing and NATO trade warnings",
        "Chinese Foreign Minister Wang Yi met his Russian counterpart Sergei Lavrov in Moscow, days after NATO called China a decisive enabler of the war in Ukraine.",
        "<p>Wang Yi also met Sergei Shoigu, secretary of Russia's Security Council, on Tuesday.</p>\
         <p>French President Emmanuel Macron said France would raise the issue with Beijing. \
         Chinese foreign ministry spokesman Guo Jiakun told reporters that NATO should stop \
         \"smearing\" China. Lavrov said relations were at their best. Shoigu did not comment.</p>",
    );
    let found = labels(&story);
    for expected in [
        "CHINA",
        "RUSSIA",
        "UKRAINE",
        "BEIJING",
        "MOSCOW",
        "NATO",
        "FRANCE",
        "WANG YI",
        "SERGEI LAVROV",
        "SERGEI SHOIGU",
        "GUO JIAKUN",
        "ASIA",
        "EUROPE",
    ] {
        assert!(
            found.iter().any(|l| l == expected),
            "{expected} in {found:?}"
        );
    }
    // Surnames fold into the full names; roles are not names.
    for absent in ["LAVROV", "SHOIGU", "FOREIGN MINISTER", "SECURITY COUNCIL"] {
        assert!(!found.iter().any(|l| l == absent), "{absent} in {found:?}");
    }
}

#[test]
fn sentence_openers_and_common_words_never_become_tags() {
    let story = entry(
        "Markets in summary",
        "",
        "<p>During Monday's session shares fell. Additionally, In Summary the Board said \
         prices rose. However Many Analysts disagreed. We ate turkey and chad with guinea fowl; \
         who knows, us too.</p><p>Read More about it. Photo Credit: Getty Images.</p>",
    );
    assert_eq!(labels(&story), Vec::<String>::new());
}

#[test]
fn places_inside_other_names_are_not_places() {
    let story = entry(
        "Sports roundup",
        "",
        "<p>Michael Jordan watched Paris Saint-Germain beat a side from the New York Times \
         league. He flew Air China. Michael Jordan smiled.</p>",
    );
    // Nor is a name holding a listed place a person: precision first. The
    // club is a listed organization, named in the lead.
    assert_eq!(labels(&story), ["PARIS SAINT-GERMAIN"]);
}

#[test]
fn acronyms_match_only_in_capitals() {
    let lower = entry("", "", "<p>The who and the nato of us all.</p>");
    assert!(labels(&lower).is_empty());
    let upper = entry("", "", "<p>The WHO warned the US and the EU on Monday.</p>");
    // Organizations after places: they are tagged once the whole entry
    // has been read (confirmed: here, in the lead).
    assert_eq!(
        labels(&upper),
        [
            "UNITED STATES",
            "NORTH AMERICA",
            "WORLD HEALTH ORGANIZATION",
            "EUROPEAN UNION"
        ]
    );
}

#[test]
fn a_single_unconfirmed_name_is_not_a_person() {
    // Once, in the body, with nothing to confirm it.
    let story = entry(
        "Weather",
        "Rain is expected across the region.",
        "<p>Showers all day.</p><p>Forecasts by Jane Porter suggest more rain next week.</p>",
    );
    assert!(labels(&story).is_empty(), "{:?}", labels(&story));
    // Named again by surname: confirmed.
    let story = entry(
        "Weather",
        "Rain is expected across the region.",
        "<p>Showers all day.</p><p>Forecasts by Jane Porter suggest more rain. Porter is often right.</p>",
    );
    assert_eq!(labels(&story), ["JANE PORTER"]);
}

#[test]
fn title_case_keeps_names_as_written_and_evidence_names_the_list() {
    let found = entities_for(&sample_story(), LabelCase::Title);
    let shown: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.tag.label.as_str(), f.origin.as_str()))
        .take(3)
        .collect();
    assert_eq!(
        shown,
        [
            ("China", "entity: country \"China\" (countries list)"),
            ("Asia", "entity: region of \"China\" (countries list)"),
            ("Moscow", "entity: city \"Moscow\" (cities list)"),
        ]
    );
    let wang = found.iter().find(|f| f.tag.term == "wang-yi").unwrap();
    assert_eq!(wang.origin, "entity: person \"Wang Yi\" (in the title)");
}

#[test]
fn demonyms_and_diacritics_fold_and_places_bring_their_region() {
    let story = entry(
        "",
        "",
        "<p>Ukrainian officials met Côte d\u{2019}Ivoire's envoy in Bogotá.</p>",
    );
    assert_eq!(
        labels(&story),
        [
            "UKRAINE",
            "EUROPE",
            "IVORY COAST",
            "AFRICA",
            "BOGOTA",
            "SOUTH AMERICA"
        ]
    );
}

#[test]
fn huge_and_hostile_text_is_bounded() {
    let body = "Chinese Russia Moscow Wang Yi said ".repeat(50_000);
    let story = entry(&"Ab Cd ".repeat(10_000), "", &body);
    let found = entities_for(&story, LabelCase::Upper);
    assert!(found.len() <= MAX_TAGS);
    assert!(found.iter().any(|f| f.tag.label == "CHINA"));
}

#[test]
fn a_title_case_headline_alone_names_no_one() {
    let story = entry(
        "Foreign Ministers Meet Brussels Delegates As Europe Weighs Aid For Ukraine",
        "Ministers met on Monday.",
        "",
    );
    assert_eq!(labels(&story), ["BRUSSELS", "EUROPE", "UKRAINE"]);
    // A name the text gives is still confirmed by the headline.
    let story = entry(
        "Wang Yi Meets Sergei Lavrov In Moscow",
        "The two ministers met. Wang Yi spoke first; Sergei Lavrov replied.",
        "",
    );
    let found = labels(&story);
    assert!(found.contains(&"WANG YI".to_string()), "{found:?}");
    assert!(found.contains(&"SERGEI LAVROV".to_string()), "{found:?}");
}

#[test]
fn generations_end_names_and_hyphenated_adjectives_are_not_names() {
    let story = entry(
        "Theodore Roosevelt IV on public lands",
        "",
        "<p>London-based Amnesty staff met. Kremlin-backed Media Group said so.</p>",
    );
    // The places in them still count.
    assert_eq!(
        labels(&story),
        ["LONDON", "EUROPE", "KREMLIN", "THEODORE ROOSEVELT IV"]
    );
}

/// A body whose first 300 bytes (the lead) say nothing.
fn after_the_lead(text: &str) -> String {
    format!(
        "<p>{}</p><p>{text}</p>",
        "Nothing of note happened. ".repeat(13)
    )
}

#[test]
fn organizations_are_tagged_when_the_article_is_about_them() {
    // Named once after the lead: in passing.
    let story = entry(
        "Basketball",
        "",
        &after_the_lead("Fans on NBA Twitter cheered."),
    );
    assert!(labels(&story).is_empty(), "{:?}", labels(&story));
    // Named twice, or in the lead: about it.
    let story = entry(
        "Basketball",
        "",
        &after_the_lead("Fans on Twitter cheered. Twitter said so."),
    );
    assert_eq!(labels(&story), ["TWITTER"]);
    // Other names are one organization, under its label.
    let story = entry("", "The UN and the United Nations met.", "");
    assert_eq!(labels(&story), ["UNITED NATIONS"]);
    assert_eq!(label_of("UN"), Some("United Nations"));
    assert_eq!(
        label_of("Centers for Disease Control and Prevention"),
        Some("CDC")
    );
    assert_eq!(label_of("Nobody Inc"), None);
}

#[test]
fn institutions_no_list_has_are_named_by_their_head_noun() {
    let story = entry(
        "",
        "The Tax Justice Network urged the Ministry of Defence to act during the State of the Union.",
        "<p>The Gurugram Metropolitan Development Authority agreed.</p>",
    );
    let found = entities_for(&story, LabelCase::Title);
    let shown: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.tag.label.as_str(), f.origin.as_str()))
        .collect();
    // The authority is named once, outside the lead: not tagged.
    assert_eq!(
        shown,
        [
            (
                "Tax Justice Network",
                "entity: organization \"Tax Justice Network\" (an institution's name, in the lead)"
            ),
            (
                "Ministry of Defence",
                "entity: organization \"Ministry of Defence\" (an institution's name, in the lead)"
            ),
        ]
    );
}

#[test]
fn stray_words_brands_and_local_words_are_not_people() {
    let story = entry(
        "Gene Sharp, scholar of non-violence, dies at 90",
        "His book From Dictatorship to Democracy Gene Sharp wrote in 1993. SmartCity Kochi \
         raised funds. Sardar Vallabhbhai Patel was honoured before the Lok Sabha polls.",
        "",
    );
    assert_eq!(labels(&story), ["VALLABHBHAI PATEL", "GENE SHARP"]);
}

/// The ASCII fast path of `fold_marked` folds as the general one does.
#[test]
fn ascii_text_folds_as_any_text_does() {
    for text in [
        "Wang Yi met Sergei Lavrov in BEIJING on Tuesday; NATO's chief spoke.",
        "",
        "  Tabs\tand\nnewlines, digits 42 and punctuation: (a) [b] {c}!",
    ] {
        assert_eq!(fold_marked(text), fold_marked_chars(text), "{text:?}");
    }
}
