//! `tributary opml import` / `export` (docs/CLI.md): the config file keeps
//! its comments and formatting, known URLs are skipped, folders become tags,
//! and export then import gives the same sources back.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use tributary::config::Config;

fn tributary(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("TRIBUTARY_CONFIG")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config_text(dir: &Path, sources: &str) -> String {
    format!(
        "# tributary for the newsroom\n\
         [daemon]\n\
         database = \"sqlite://{}\"  # next to this file\n\
         listen = \"127.0.0.1:0\"\n\
         \n\
         # --- sources ---\n\
         {sources}\n\
         # Output feeds below.\n\
         [[feed]]\n\
         name = \"world\"\n\
         title = \"World\"\n\
         any = [\"world\"]\n",
        dir.join("tributary.db").display()
    )
}

const OPML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Reader export</title></head>
  <body>
    <outline text="World">
      <outline text="Africa">
        <outline type="rss" text="RFI Afrique" title="RFI Afrique" xmlUrl="https://www.rfi.fr/fr/afrique/rss" htmlUrl="https://www.rfi.fr/fr/afrique/"/>
      </outline>
      <outline type="rss" text="Wire" xmlUrl="https://wire.example/feed.xml"/>
    </outline>
    <outline type="rss" text="already here" xmlUrl="https://EXAMPLE.org:443/feed"/>
    <outline type="rss" text="Wire" xmlUrl="https://other-wire.example/rss"/>
    <outline type="rss" text="not a feed" xmlUrl="ftp://files.example/feed"/>
  </body>
</opml>
"#;

#[test]
fn import_appends_new_sources_keeping_comments_and_skipping_known_urls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    let existing = "[[source]]\nname = \"wire\"   # hand-written\nurl = \"https://example.org/feed\"\ntags = [\"World\"]\n";
    let original = config_text(dir.path(), existing);
    std::fs::write(&path, &original).unwrap();
    let opml = dir.path().join("subscriptions.opml");
    std::fs::write(&opml, OPML).unwrap();
    let config = path.to_str().unwrap();

    let out = tributary(&["opml", "import", opml.to_str().unwrap(), "-c", config]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("3 sources added, 1 already present"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped ftp://files.example/feed"));

    let text = std::fs::read_to_string(&path).unwrap();
    // Every original line is still there, in order, comments included.
    let mut lines = text.lines();
    for line in original.lines() {
        assert!(
            lines.any(|l| l == line),
            "lost or moved {line:?} in:\n{text}"
        );
    }
    // New sources follow the existing one, before the feeds.
    let new_at = text.find("name = \"rfi-afrique\"").expect("added");
    assert!(new_at > text.find("# hand-written").unwrap());
    assert!(new_at < text.find("# Output feeds below.").unwrap());

    let loaded = Config::load(&path).unwrap();
    let sources: Vec<(&str, &str, Vec<&str>)> = loaded
        .sources
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.url.as_str(),
                s.tags.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![
            ("wire", "https://example.org/feed", vec!["World"]),
            (
                "rfi-afrique",
                "https://www.rfi.fr/fr/afrique/rss",
                vec!["World", "Africa"]
            ),
            ("wire-2", "https://wire.example/feed.xml", vec!["World"]),
            ("wire-3", "https://other-wire.example/rss", vec![]),
        ]
    );
    let check = tributary(&["check", "-c", config]);
    assert!(ok(&check).contains("4 sources"));

    // Importing the same file again adds nothing and leaves the file alone.
    let again = ok(&tributary(&[
        "opml",
        "import",
        opml.to_str().unwrap(),
        "-c",
        config,
    ]));
    assert!(
        again.contains("0 sources added, 4 already present"),
        "{again}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_bad_opml_file_changes_nothing_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.toml");
    let original = config_text(dir.path(), "");
    std::fs::write(&path, &original).unwrap();
    let bad = dir.path().join("bad.opml");
    std::fs::write(&bad, "<rss version=\"2.0\"><channel/></rss>").unwrap();
    let out = tributary(&[
        "opml",
        "import",
        bad.to_str().unwrap(),
        "-c",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not OPML"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
}

#[test]
fn export_then_import_gives_the_same_sources_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let source_config = dir.path().join("a.toml");
    std::fs::write(
        &source_config,
        config_text(
            dir.path(),
            "[[source]]\nname = \"rfi-en\"\nurl = \"https://www.rfi.fr/en/rss\"\ntags = [\"rfi\", \"World News\"]\n\n\
             [[source]]\nname = \"bbc-world\"\nurl = \"https://feeds.bbci.co.uk/news/world/rss.xml?edition=int&amp=1\"\ntags = [\"World News\"]\n\n\
             [[source]]\nname = \"plain\"\nurl = \"https://plain.example/feed\"\n",
        ),
    )
    .unwrap();
    let exported = ok(&tributary(&[
        "opml",
        "export",
        "-c",
        source_config.to_str().unwrap(),
    ]));
    assert!(
        exported.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\"")
    );
    assert!(exported.contains("edition=int&amp;amp=1"), "{exported}");
    let feeds = tributary::opml::parse(&exported).unwrap();
    assert_eq!(feeds.len(), 3);

    let other_dir = tempfile::tempdir().unwrap();
    let target = other_dir.path().join("b.toml");
    std::fs::write(&target, config_text(other_dir.path(), "")).unwrap();
    let opml = other_dir.path().join("export.opml");
    std::fs::write(&opml, &exported).unwrap();
    ok(&tributary(&[
        "opml",
        "import",
        opml.to_str().unwrap(),
        "-c",
        target.to_str().unwrap(),
    ]));

    let summary = |path: &Path| -> BTreeSet<(String, String, BTreeSet<String>)> {
        Config::load(path)
            .unwrap()
            .sources
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.url.to_string(),
                    s.tags.iter().cloned().collect(),
                )
            })
            .collect()
    };
    assert_eq!(summary(&target), summary(&source_config));
}
