//! The key → slot vectors shared with the Go module (clients/go/testdata/slot_vectors.txt):
//! each line is `<key as hex, "-" for the empty key> <slot>`; `#` lines are comments.

use topom::model::slot_of;

fn unhex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii hex");
            u8::from_str_radix(pair, 16).expect("hex byte")
        })
        .collect()
}

#[test]
fn slot_vectors_match_the_go_module() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clients/go/testdata/slot_vectors.txt"
    );
    let text = std::fs::read_to_string(path).expect("read slot_vectors.txt");
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, slot) = line.split_once(' ').expect("`<hex key> <slot>`");
        let key = if key == "-" { Vec::new() } else { unhex(key) };
        let want: u32 = slot.parse().expect("slot number");
        assert_eq!(slot_of(&key), want, "line {}", i + 1);
        n += 1;
    }
    assert!(n >= 100, "only {n} vectors");
}
