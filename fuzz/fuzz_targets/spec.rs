//! The spec parser and shape inference: any text is a network or an error pointing into the
//! text; a network's summary never overflows, and its printed form parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sepnet_model::Summary;
use sepnet_model::spec::NetworkSpec;

fuzz_target!(|data: &[u8]| {
    let Some((&[h, w, c], text)) = data.split_first_chunk::<3>() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let input = [h as usize + 1, w as usize + 1, c as usize % 8 + 1];
    match NetworkSpec::parse(text, input) {
        Ok(spec) => {
            let summary = Summary::of(&spec).expect("a parsed spec has shapes");
            let again = NetworkSpec::parse(&summary.spec, input).expect("the printed spec parses");
            assert_eq!(again.layers, spec.layers, "{text} printed as {}", summary.spec);
        }
        Err(err) => {
            let (start, end) = err.span;
            assert!(start <= end && end <= text.len() && text.is_char_boundary(start));
            let _ = err.to_string();
        }
    }
});
