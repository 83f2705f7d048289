//! Phase 3: Python feedparser on the first files of the same corpus, the
//! parse rate of the most used feed library, as a baseline of the ingest.

use tokio::process::Command;

use crate::Run;

const FEEDPARSER_SCRIPT: &str = r#"
import glob, multiprocessing, sys, time
import feedparser

def parse(path):
    with open(path, "rb") as f:
        return len(feedparser.parse(f.read()).entries)

if __name__ == "__main__":
    files = sorted(glob.glob(sys.argv[1] + "/*.xml"))
    started = time.perf_counter()
    with multiprocessing.Pool(int(sys.argv[2])) as pool:
        entries = sum(pool.map(parse, files, chunksize=1))
    print(entries, time.perf_counter() - started)
"#;

/// Entries/s of Python feedparser over the first `--feedparser-sources`
/// feeds on all cores, or why it was skipped.
pub async fn rate(run: &Run) -> Result<f64, String> {
    let (dir, feeds, n, cores) = (&run.dir, &run.feeds, run.args.feedparser_sources, run.cores);
    if n == 0 {
        return Err("disabled (--feedparser-sources 0)".into());
    }
    let probe = Command::new("python3")
        .args(["-c", "import feedparser"])
        .output()
        .await;
    if !probe.is_ok_and(|o| o.status.success()) {
        return Err("python3 with feedparser not found (pip install feedparser)".into());
    }
    let files = dir.join("feedparser");
    std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
    for (i, bytes) in feeds.iter().take(n).enumerate() {
        std::fs::write(files.join(format!("s{i:05}.xml")), bytes).map_err(|e| e.to_string())?;
    }
    let script = dir.join("feedparser_bench.py");
    std::fs::write(&script, FEEDPARSER_SCRIPT).map_err(|e| e.to_string())?;
    let output = Command::new("python3")
        .arg(&script)
        .arg(&files)
        .arg(cores.to_string())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut parts = stdout.split_whitespace();
    let (Some(entries), Some(secs)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "feedparser run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    };
    let entries: f64 = entries.parse().map_err(|_| "bad output".to_string())?;
    let secs: f64 = secs.parse().map_err(|_| "bad output".to_string())?;
    eprintln!("feedparser: {entries} entries in {secs:.2} s on {cores} processes");
    Ok(entries / secs)
}
