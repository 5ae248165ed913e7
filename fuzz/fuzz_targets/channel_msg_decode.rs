//! Fuzz target: the channel message decoder (`channel_fsm::msg::decode`) on arbitrary bytes must never
//! panic and must refuse anything above `MESSAGE_SIZE_MAX`; whatever decodes re-encodes to the same
//! bytes (the encoding is canonical) and decodes again to the same message.
#![no_main]

use channel_fsm::msg::{MESSAGE_SIZE_MAX, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = decode(data) else {
        return;
    };
    assert!(data.len() <= MESSAGE_SIZE_MAX);
    let bytes = encode(&msg).expect("a decoded message re-encodes within the limit");
    assert_eq!(bytes, data, "decode/encode round trip");
    assert_eq!(decode(&bytes).as_ref(), Ok(&msg));
});
