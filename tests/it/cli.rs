//! The `tributary` binary as users run it (docs/CLI.md).

use crate::helpers::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tributary(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_names_the_program() {
    let out = tributary(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("tributary {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_accepts_the_example_config() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tributary.example.toml");
    let out = tributary(&["check", "-c", example]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("ok: 8 sources"), "{summary}");
}

/// From a shell, `check` names the database the systemd unit opens when
/// the config leaves `database` to its default (`$STATE_DIRECTORY`), and
/// the file a relative path names here; under systemd, the one it opens.
#[test]
fn check_prints_the_database_run_opens_here_and_under_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().canonicalize().unwrap();
    let config = here.join("tributary.toml");
    let check = |state_directory: Option<&std::path::Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
        command
            .args(["check", "-c", config.to_str().unwrap()])
            .current_dir(&here)
            .env_remove("STATE_DIRECTORY");
        if let Some(dir) = state_directory {
            command.env("STATE_DIRECTORY", dir);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    std::fs::write(&config, "[daemon]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
    let from_shell = check(None);
    assert!(
        from_shell.contains(&format!(
            "; database sqlite:///var/lib/tributary/tributary.db as the systemd service ($STATE_DIRECTORY), sqlite://tributary.db ({}) when run from this directory; listening on 127.0.0.1:8080",
            here.join("tributary.db").display()
        )),
        "{from_shell}"
    );
    let state = tempfile::tempdir().unwrap();
    let under_systemd = check(Some(state.path()));
    assert!(
        under_systemd.contains(&format!(
            "; database sqlite://{}/tributary.db; listening",
            state.path().display()
        )),
        "{under_systemd}"
    );

    // A database the config names is the same from anywhere.
    std::fs::write(
        &config,
        "[daemon]\ndatabase = \"postgres://tributary:secret@db.internal/tributary\"\n",
    )
    .unwrap();
    let named = check(None);
    assert!(
        named.contains("; database postgres://tributary:***@db.internal/tributary; listening"),
        "{named}"
    );
}

#[test]
fn check_reports_config_errors_with_their_position_and_exits_2() {
    let cases = [
        ("[daemon]\nshedule = \"* * * * *\"\n", 2, 1, "unknown key"),
        ("[[source]]\nname = \"a\"\nurl = \"https://a.example/\"\nschedule = \"61 * * * *\"\n", 4, 12, "cron"),
        ("[[source]]\nname = \"a\"\nurl = \"not a url\"\n", 3, 7, "URL"),
        ("[daemon]\ntimeout = \"soon\"\n", 2, 11, "duration"),
        ("[daemon]\nmax_body = \"10 parsecs\"\n", 2, 12, "size"),
        (
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/\"\n[[source]]\nname = \"a\"\nurl = \"https://b.example/\"\n",
            5,
            8,
            "duplicate source name",
        ),
    ];
    for (toml, line, col, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        for command in ["check", "run"] {
            let out = tributary(&[command, "-c", path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(2), "{command} on {toml:?}");
            let stderr = text(&out.stderr);
            let prefix = format!("{}:{line}:{col}: ", path.display());
            assert!(
                stderr.starts_with(&prefix),
                "{toml:?}: expected {prefix}… got {stderr}"
            );
            assert!(
                stderr.to_lowercase().contains(&words.to_lowercase()),
                "{stderr}"
            );
        }
    }
}

#[tokio::test]
async fn fetch_sources_and_export_work_from_the_command_line() {
    let server = FeedServer::start().await;
    server.set(
        "/good",
        Fixture::feed(
            "<rss version=\"2.0\"><channel><title>Good</title><link>https://good.example/</link>\
             <item><title>Hello &amp; welcome</title><link>https://good.example/1</link><category>Politics</category>\
             <pubDate>Fri, 27 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>",
        ),
    );
    server.set("/broken", Fixture::status(503));
    let config = TestConfig::write(
        "",
        &format!(
            "[[source]]\nname = \"good\"\nurl = \"{}\"\n[[source]]\nname = \"broken\"\nurl = \"{}\"\n\
             [[feed]]\nname = \"politics\"\nany = [\"politics\"]\n",
            server.url("/good"),
            server.url("/broken")
        ),
    );
    let path = config.path();
    let path = path.to_str().unwrap();
    let fetch = tokio::task::spawn_blocking({
        let path = path.to_string();
        move || tributary(&["fetch", "-c", &path])
    })
    .await
    .unwrap();
    assert!(
        fetch.status.success(),
        "a failing source is not a failed run: {}",
        text(&fetch.stderr)
    );
    let stdout = text(&fetch.stdout);
    assert!(
        stdout.contains("good\t200\tok\t1 entries: 1 new"),
        "{stdout}"
    );
    assert!(stdout.contains("broken\t503\terror: HTTP 503"), "{stdout}");
    assert!(stdout.contains("2 sources fetched, 1 failed"), "{stdout}");

    let sources = tributary(&["sources", "-c", path]);
    assert!(sources.status.success());
    let table = text(&sources.stdout);
    let header = table.lines().next().unwrap();
    for column in [
        "NAME",
        "URL",
        "LAST FETCH",
        "STATUS",
        "ARTICLES",
        "FAILURES",
        "NEXT FETCH",
        "LAST ERROR",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let broken = table.lines().find(|l| l.starts_with("broken")).unwrap();
    assert!(
        broken.contains("503")
            && broken.contains("HTTP 503")
            && broken.contains("backing off until"),
        "{broken}"
    );
    let good = table.lines().find(|l| l.starts_with("good")).unwrap();
    assert!(
        good.contains(" 1 ") && good.trim_end().ends_with('-'),
        "{good}"
    );

    // export prints what the server serves.
    let exported = tributary(&["export", "-c", path, "--feed", "politics"]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let exported_json = tributary(&[
        "export", "-c", path, "--any", "Politics", "--format", "json",
    ]);
    let app = TestApp::spawn(config.load()).await;
    let served = app.get_text("/feeds/politics.atom").await;
    assert_eq!(text(&exported.stdout), served);
    assert_eq!(
        text(&exported_json.stdout),
        app.get_text("/feed.json?any=politics").await
    );
    assert_valid_atom(&served);
    app.stop().await;

    let unknown = tributary(&["fetch", "-c", path, "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test]
async fn sigterm_stops_the_daemon_promptly_during_a_hanging_fetch() {
    // A server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = format!("http://{}/feed", listener.local_addr().unwrap());
    let connected = std::sync::Arc::new(tokio::sync::Notify::new());
    let accepted = connected.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            accepted.notify_one();
        }
    });
    let config = TestConfig::write(
        "timeout = \"1h\"\n",
        &format!("[[source]]\nname = \"slow\"\nurl = \"{hanging}\"\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "-c", config.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the fetch has begun.
    tokio::time::timeout(Duration::from_secs(20), connected.notified())
        .await
        .expect("the daemon did not start its fetch within 20 s");
    assert!(child.try_wait().unwrap().is_none(), "daemon exited early");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "daemon did not stop within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
}
