//! Where a trail is read from: files, directories (every file below them,
//! in name order), standard input (`-`), each possibly gzip-compressed
//! (`.gz`, or gzip magic bytes on standard input).

use crate::Session;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".into(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// The sources named on the command line: directories expanded (files
/// below them, sorted; names starting with `.` skipped). A path that does
/// not exist is an error naming it.
pub fn expand(args: &[String]) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    for a in args {
        if a == "-" {
            out.push(Source::Stdin);
            continue;
        }
        let p = PathBuf::from(a);
        let meta = std::fs::metadata(&p).map_err(|e| format!("{a}: {e}"))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(&p, &mut files).map_err(|e| format!("{a}: {e}"))?;
            files.sort();
            out.extend(files.into_iter().map(Source::File));
        } else {
            out.push(Source::File(p));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one source into the session (decompressing gzip); an unreadable
/// source is recorded as such. Returns the events it held.
pub fn read_into(session: &mut Session<'_>, source: &Source) -> usize {
    let name = source.name();
    let result = match source {
        Source::Stdin => {
            // Unlocked (a lock cannot move to the reading thread); read in 1 MB pieces.
            let mut r = BufReader::with_capacity(1 << 20, std::io::stdin());
            let gz = r.fill_buf().map(|b| b.starts_with(&[0x1f, 0x8b])).unwrap_or(false);
            if gz {
                session.add_reader(&name, &mut flate2::bufread::MultiGzDecoder::new(r), None)
            } else {
                session.add_reader(&name, &mut r, None)
            }
        }
        Source::File(path) => read_file(session, &name, path),
    };
    result.unwrap_or_else(|e| {
        session.unreadable(format!("{name}: {e}"));
        0
    })
}

fn read_file(session: &mut Session<'_>, name: &str, path: &Path) -> std::io::Result<usize> {
    let mut file = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let whole = || -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let f = BufReader::new(std::fs::File::open(path)?);
        if gz {
            flate2::bufread::MultiGzDecoder::new(f).read_to_end(&mut bytes)?;
        } else {
            let mut f = f;
            f.read_to_end(&mut bytes)?;
        }
        Ok(bytes)
    };
    if gz {
        session.add_reader(name, &mut flate2::bufread::MultiGzDecoder::new(file), Some(&whole))
    } else {
        // Large reads straight into the session's block.
        session.add_reader(name, &mut std::fs::File::open(path)?, Some(&whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use std::io::Write;

    #[test]
    fn directories_and_gzip_are_read_like_plain_files() {
        let data = include_bytes!("../../core/tests/data/verify/intact.ndjson");
        let dir = std::env::temp_dir().join(format!("pa-verify-src-{}", std::process::id()));
        let sub = dir.join("2026/12");
        std::fs::create_dir_all(&sub).unwrap();
        let text = String::from_utf8_lossy(data);
        let lines: Vec<&str> = text.lines().collect();
        let half = lines.len() / 2;
        std::fs::write(dir.join("a.ndjson"), lines[..half].join("\n")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(lines[half..].join("\n").as_bytes()).unwrap();
        std::fs::write(sub.join("b.ndjson.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.join(".hidden"), b"not json").unwrap();
        let found = expand(&[dir.display().to_string()]).unwrap();
        assert_eq!(found, vec![Source::File(sub.join("b.ndjson.gz")), Source::File(dir.join("a.ndjson"))]);
        let opts = Options::default();
        let mut session = Session::new(&opts);
        let events: usize = found.iter().map(|s| read_into(&mut session, s)).sum();
        let r = session.finish();
        let whole = crate::verify_inputs(&[("intact.ndjson", data.as_slice())], &[]);
        assert_eq!((events, r.exit_code()), (lines.len(), 0), "{}", r.render());
        assert_eq!(r.emitters, whole.emitters);
        assert!(expand(&[dir.join("nope").display().to_string()]).is_err_and(|e| e.contains("nope")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
