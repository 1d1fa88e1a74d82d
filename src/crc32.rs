//! CRC-32 as used by zlib, gzip, PNG and Ethernet (IEEE 802.3).
//!
//! Polynomial 0x04C11DB7, processed bit-reflected (0xEDB88320), initial
//! value 0xFFFFFFFF, final XOR 0xFFFFFFFF. Python's `zlib.crc32` computes the
//! same value. A 16-entry table (64 bytes) processes four bits at a time: a
//! compromise between the 1 KiB byte table and bit-by-bit code, for flash
//! sizes of microcontrollers.

const REFLECTED_POLYNOMIAL: u32 = 0xEDB8_8320;

const TABLE: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 4 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ REFLECTED_POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Computes the CRC-32 of `bytes`.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        crc = (crc >> 4) ^ TABLE[(crc & 0xF) as usize];
        crc = (crc >> 4) ^ TABLE[(crc & 0xF) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::crc32;

    /// The check value of CRC-32/ISO-HDLC from the catalogue of parametrised
    /// CRC algorithms (reveng.sourceforge.io/crc-catalogue): the CRC of the
    /// ASCII string "123456789".
    #[test]
    fn crc32_check_value() {
        let crc = crc32(b"123456789");
        assert_eq!(crc, 0xCBF4_3926, "crc32(\"123456789\") = {crc:#010x}");
    }

    #[test]
    fn crc32_empty_input() {
        let crc = crc32(b"");
        assert_eq!(crc, 0, "crc32(\"\") = {crc:#010x}");
    }

    /// zlib.crc32(bytes(range(256))) in Python 3.
    #[test]
    fn crc32_all_byte_values() {
        let mut bytes = [0u8; 256];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let crc = crc32(&bytes);
        assert_eq!(crc, 0x2905_8C73, "crc32(0..=255) = {crc:#010x}");
    }
}
