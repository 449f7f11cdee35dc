//! The nemesis nodes file: any text either parses into nodes that passed every
//! check, or is an error naming the file; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitbrain_nemesis::nodes::NodesFile;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/sb/nodes.toml");
    match NodesFile::parse(text, path) {
        Ok(file) => {
            assert!(!file.nodes.is_empty());
            for n in &file.nodes {
                assert!(!n.name.is_empty() && n.port != 0);
                assert!(!n.host.is_empty() && !n.host.starts_with('-'));
            }
            let _ = file.client_urls();
        }
        Err(e) => assert!(e.to_string().contains("nodes.toml"), "{e}"),
    }
});
