//! The download path against a local HTTP server on 127.0.0.1 started here: good checksum,
//! bad checksum, truncated transfer, server gone. The cache ends up either complete and
//! verified, or untouched.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread::JoinHandle;

use md5::{Digest, Md5};
use sepnet_data::download::{Remote, fetch, md5_file};
use sepnet_data::{DataError, DatasetKind, Locator};

const BODY: &[u8] =
    b"sepnet fixture: the bytes a good mirror serves, long enough to be streamed in pieces.";

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `requests` requests, then stops: `/good`, `/bad` (other bytes), `/truncated`
/// (announces the full length, sends half, hangs up).
fn serve(requests: usize) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            let (status, body, sent): (&str, Vec<u8>, usize) = match path.as_str() {
                "/good" => ("200 OK", BODY.to_vec(), BODY.len()),
                "/bad" => ("200 OK", BODY.to_ascii_uppercase(), BODY.len()),
                "/truncated" => ("200 OK", BODY.to_vec(), BODY.len() / 2),
                _ => ("404 Not Found", b"no".to_vec(), 2),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..sent]);
            let _ = stream.flush();
            drop(stream);
        }
    });
    (base, handle)
}

/// A URL on a port where nothing listens any more.
fn gone_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    assert!(TcpStream::connect(addr).is_err());
    format!("http://{addr}/good")
}

fn remote(urls: Vec<String>) -> Remote {
    Remote {
        file: "fixture.bin".into(),
        urls,
        md5: md5_hex(BODY),
    }
}

/// Names in `dir` (temporary files included).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[test]
fn good_download_is_verified_and_complete() {
    let (base, server) = serve(1);
    let cache = tempfile::tempdir().unwrap();
    let path = fetch(&remote(vec![format!("{base}/good")]), cache.path(), false).unwrap();
    server.join().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), BODY);
    assert_eq!(listing(cache.path()), vec!["fixture.bin"]);
    // Present and verified: no network needed the second time.
    assert_eq!(
        fetch(&remote(vec![gone_url()]), cache.path(), false).unwrap(),
        path
    );
}

#[test]
fn bad_checksum_truncation_and_gone_server_leave_the_cache_untouched() {
    let (base, server) = serve(2);
    let cases = [
        (format!("{base}/bad"), "checksum mismatch"),
        (format!("{base}/truncated"), "transfer broke off"),
        (gone_url(), "fixture.bin"),
    ];
    for (url, problem) in cases {
        let cache = tempfile::tempdir().unwrap();
        let err = fetch(&remote(vec![url.clone()]), cache.path(), false).unwrap_err();
        assert!(matches!(err, DataError::Download { .. }), "{err}");
        assert!(err.to_string().contains(problem), "{url}: {err}");
        assert!(
            listing(cache.path()).is_empty(),
            "{url} left {:?}",
            listing(cache.path())
        );
    }
    server.join().unwrap();
}

#[test]
fn mirrors_are_tried_in_order() {
    let (base, server) = serve(1);
    let cache = tempfile::tempdir().unwrap();
    let path = fetch(
        &remote(vec![gone_url(), format!("{base}/good")]),
        cache.path(),
        false,
    )
    .unwrap();
    server.join().unwrap();
    assert_eq!(md5_file(&path).unwrap(), md5_hex(BODY));
    assert_eq!(listing(cache.path()), vec!["fixture.bin"]);
}

#[test]
fn a_file_that_is_not_the_published_one_is_never_replaced() {
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(cache.path().join("fixture.bin"), b"someone's own file").unwrap();
    let err = fetch(&remote(vec![gone_url()]), cache.path(), false).unwrap_err();
    assert!(err.to_string().contains("does not replace it"), "{err}");
    assert_eq!(
        std::fs::read(cache.path().join("fixture.bin")).unwrap(),
        b"someone's own file"
    );
}

#[test]
fn a_named_data_dir_is_never_downloaded_into() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("train-images-idx3-ubyte.gz")).unwrap();
    let locator = Locator {
        data_dir: Some(dir.path().to_path_buf()),
        offline: false,
        progress: false,
    };
    let err = locator.load(&DatasetKind::Mnist).unwrap_err().to_string();
    assert!(
        err.contains("train-images-idx3-ubyte.gz is not a file"),
        "{err}"
    );
    assert!(
        err.contains("train-labels-idx1-ubyte.gz (or train-labels-idx1-ubyte) is missing"),
        "{err}"
    );
    assert!(
        err.contains("does not download into a folder you name"),
        "{err}"
    );
    assert_eq!(listing(dir.path()), vec!["train-images-idx3-ubyte.gz"]);
}

#[test]
fn offline_and_missing_says_which_files_to_put_where() {
    let dir = tempfile::tempdir().unwrap();
    let locator = Locator {
        data_dir: Some(dir.path().to_path_buf()),
        offline: true,
        progress: false,
    };
    let err = locator.load(&DatasetKind::Mnist).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    let err = locator.load(&DatasetKind::Cifar10).unwrap_err().to_string();
    assert!(err.contains("cifar-10-binary.tar.gz"), "{err}");
}
