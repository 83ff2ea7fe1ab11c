//! A protocol-buffer writer: the few wire types that ONNX models and TensorBoard event files
//! need, written field by field (a message is a list of `key, value` pairs; nothing else of
//! protobuf is required to write one).

/// A protocol-buffer message under construction.
///
/// ```
/// use sepnet_model::proto::Message;
/// let m = Message::default().int(1, 300).bytes(2, b"hi");
/// assert_eq!(m.into_bytes(), [0x08, 0xac, 0x02, 0x12, 2, b'h', b'i']);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }

    /// A varint field (`int32`, `int64`, `uint64`, `bool`, enums); negative values as
    /// protobuf encodes `int64` (ten bytes, two's complement).
    pub fn int(mut self, field: u64, v: i64) -> Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }

    /// A `double` field.
    pub fn double(mut self, field: u64, v: f64) -> Self {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `float` field.
    pub fn float(mut self, field: u64, v: f32) -> Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bytes` or `string` field.
    pub fn bytes(mut self, field: u64, v: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    /// A `string` field.
    pub fn string(self, field: u64, v: &str) -> Self {
        self.bytes(field, v.as_bytes())
    }

    /// An embedded message.
    pub fn message(self, field: u64, m: Message) -> Self {
        self.bytes(field, &m.0)
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The encoded bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}
