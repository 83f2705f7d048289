//! Start-up failures a newcomer can cause say what went wrong, where, and
//! what to do, within seconds; and never print a password.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `tributary run` on a config whose database is `database`; returns
/// its stderr once it exits by itself (it must, well before the 30 s a
/// pool's acquire timeout used to take), and whether it failed.
fn run_until_it_gives_up(database: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!("[daemon]\ndatabase = \"{database}\"\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "-c", config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Generous: a liveness bound, not a performance figure.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(25) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still starting after 25 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        !out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_file_that_is_not_a_database_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200)).unwrap();
    let (failed, stderr) = run_until_it_gives_up(&format!("sqlite://{}", path.display()));
    assert!(failed);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a SQLite database"), "{stderr}");
    // Nothing was written over the user's file.
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("these are my notes"));
}

#[test]
fn an_in_memory_sqlite_database_is_refused_with_what_to_use() {
    // Its articles would vanish at every restart, unseen until then.
    let (failed, stderr) = run_until_it_gives_up("sqlite::memory:");
    assert!(failed);
    assert!(stderr.contains("sqlite::memory:"), "{stderr}");
    assert!(stderr.contains("use sqlite://PATH"), "{stderr}");
}

#[test]
fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no").join("such");
    let (failed, stderr) =
        run_until_it_gives_up(&format!("sqlite://{}/tributary.db", missing.display()));
    assert!(failed);
    assert!(
        stderr.contains(&format!("directory {} does not exist", missing.display())),
        "{stderr}"
    );
}

#[test]
fn postgres_on_a_closed_port_says_connection_refused() {
    // Port 1 on loopback: nothing listens there.
    let (failed, stderr) = run_until_it_gives_up("postgres://tributary@127.0.0.1:1/news");
    assert!(failed);
    assert!(stderr.contains("127.0.0.1:1/news"), "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
}

#[test]
fn a_postgres_login_error_never_prints_the_password() {
    let Some(server) = crate::helpers::postgres_server() else {
        return;
    };
    let mut url = url::Url::parse(&server).unwrap();
    url.set_username("no_such_role_here").unwrap();
    url.set_password(Some("s3cret-Pa55")).unwrap();
    let (failed, stderr) = run_until_it_gives_up(url.as_str());
    assert!(failed);
    assert!(!stderr.contains("s3cret-Pa55"), "{stderr}");
    assert!(stderr.contains("no_such_role_here"), "{stderr}");
}

/// The configs shipped in `deploy/` are valid and keep passwords out of
/// their database URLs (they are installed world-readable).
#[test]
fn shipped_deploy_configs_are_valid_and_hold_no_password() {
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    let mut checked = 0;
    for entry in std::fs::read_dir(deploy).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["check", "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let config = tributary::config::Config::load(&path).unwrap();
        let url = url::Url::parse(&config.daemon.database).unwrap();
        assert_eq!(url.password(), None, "{}", path.display());
        checked += 1;
    }
    assert!(checked > 0);
}

/// The quick start shows a merged feed at once on any machine: the example
/// config's sample source is a file beside it, read with no network.
#[test]
fn the_example_config_serves_its_sample_story_offline() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        repo.join("config/tributary.example.toml"),
        dir.path().join("tributary.toml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("samples")).unwrap();
    std::fs::copy(
        repo.join("config/samples/newsroom-sample.xml"),
        dir.path().join("samples/newsroom-sample.xml"),
    )
    .unwrap();
    let tributary = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("STATE_DIRECTORY")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Only the sample: the example's real sources would need the network.
    tributary(&["fetch", "-c", "tributary.toml", "sample"]);
    let atom = tributary(&["export", "-c", "tributary.toml", "--feed", "china-russia"]);
    let feed = feed_rs::parser::parse(atom.as_bytes()).unwrap();
    let story = feed
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content.contains("Wang Yi meets"))
        .unwrap_or_else(|| panic!("the sample story is served: {atom}"));
    let labels: Vec<&str> = story
        .categories
        .iter()
        .map(|c| c.label.as_deref().unwrap_or(&c.term))
        .collect();
    for tag in ["CHINA", "RUSSIA", "WANG YI", "SERGEI LAVROV"] {
        assert!(labels.contains(&tag), "{tag} in {labels:?}");
    }
    assert_eq!(story.authors[0].name.as_deref(), Some("Newsroom with AFP"));
    assert!(story.summary.is_some() && story.content.is_some());

    // Unchanged on disk: the next fetch is a 304, not a re-import.
    let again = tributary(&["fetch", "-c", "tributary.toml", "sample"]);
    assert!(again.contains("304"), "{again}");
}

/// `check` says before `run` what will go wrong on this machine or for
/// readers elsewhere, while still accepting the config.
#[test]
fn check_warns_about_a_loopback_base_url_and_a_missing_database_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    let missing = dir.path().join("no-such-dir");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"sqlite://{}/tributary.db\"\nlisten = \"0.0.0.0:8080\"\nbase_url = \"http://127.0.0.1:8080\"\n",
            missing.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["check", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: base_url http://127.0.0.1:8080/ is a loopback address but listen is 0.0.0.0:8080"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "database directory {} does not exist",
            missing.display()
        )),
        "{stderr}"
    );

    // A loopback daemon with a loopback base_url is the quick start: quiet.
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"sqlite://{}/tributary.db\"\nlisten = \"127.0.0.1:8080\"\nbase_url = \"http://127.0.0.1:8080\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["check", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

/// With only warnings logged, a failed refresh still names its source; and
/// when every source fails to connect, `fetch` says the machine may be
/// offline instead of leaving the newcomer to read each error.
#[test]
fn failures_name_their_source_and_an_offline_machine_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    // Nothing listens on loopback port 1 or 2: refused at once, no traffic
    // beyond this machine.
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"sqlite://{}/t.db\"\nlisten = \"127.0.0.1:0\"\nlog_level = \"warn\"\n\n\
             [[source]]\nname = \"first-broken\"\nurl = \"http://127.0.0.1:1/feed.xml\"\n\n\
             [[source]]\nname = \"second-broken\"\nurl = \"http://127.0.0.1:2/feed.xml\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["fetch", "-c", config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in ["first-broken", "second-broken"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("refresh failed") && l.contains(name)),
            "{stderr}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 sources fetched, 2 failed"), "{stdout}");
    assert!(
        stdout.contains("every source failed to connect"),
        "{stdout}"
    );
}

/// SIGTERM works at any moment of start-up: here while the database (a
/// loopback listener that accepts and never answers) keeps it waiting.
#[test]
fn sigterm_during_start_up_stops_at_once() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!("[daemon]\ndatabase = \"postgres://tributary@127.0.0.1:{port}/news\"\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Held in the database's handshake: accepted, never answered.
    let (_held, _) = silent.accept().unwrap();
    assert!(child.try_wait().unwrap().is_none(), "still starting");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let asked = Instant::now();
    // The start-up probe waits up to 10 s for the database; SIGTERM must
    // not (a liveness bound, not a performance figure).
    while child.try_wait().unwrap().is_none() {
        assert!(
            asked.elapsed() < Duration::from_secs(8),
            "SIGTERM ignored during start-up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success(), "a clean stop, exit 0");
}
