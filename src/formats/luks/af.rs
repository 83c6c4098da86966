//! LUKS's anti-forensic splitter: a key is stored spread over `stripes`
//! times its length, so that erasing any part of the stripes destroys it.
//! Every stripe but the last is random; each is XORed into a running buffer
//! that is then diffused with the hash; the last stripe is the key XORed
//! with that buffer.

use zeroize::Zeroizing;

use super::cipher::Hash;

/// Hashes `buf` in digest-sized pieces, each prefixed with its index
/// (big-endian u32), keeping as many bytes as the piece had.
fn diffuse(hash: Hash, buf: &mut [u8]) {
    let len = hash.digest_len();
    for (i, piece) in buf.chunks_mut(len).enumerate() {
        let digest = hash.digest(&[&(i as u32).to_be_bytes(), piece]);
        let n = piece.len();
        piece.copy_from_slice(&digest[..n]);
    }
}

/// Splits `key` into `stripes` stripes, the random ones from `random`.
pub fn split(hash: Hash, key: &[u8], stripes: usize, random: &[u8]) -> Zeroizing<Vec<u8>> {
    let n = key.len();
    let mut out = Zeroizing::new(vec![0u8; n * stripes]);
    out[..n * (stripes - 1)].copy_from_slice(&random[..n * (stripes - 1)]);
    let mut acc = Zeroizing::new(vec![0u8; n]);
    for stripe in out[..n * (stripes - 1)].chunks(n) {
        acc.iter_mut().zip(stripe).for_each(|(a, s)| *a ^= s);
        diffuse(hash, &mut acc);
    }
    let last = &mut out[n * (stripes - 1)..];
    for ((o, a), k) in last.iter_mut().zip(acc.iter()).zip(key) {
        *o = a ^ k;
    }
    out
}

/// Recovers a key of `key_len` bytes from its stripes.
pub fn merge(hash: Hash, material: &[u8], key_len: usize, stripes: usize) -> Zeroizing<Vec<u8>> {
    let mut acc = Zeroizing::new(vec![0u8; key_len]);
    for stripe in material[..key_len * (stripes - 1)].chunks(key_len) {
        acc.iter_mut().zip(stripe).for_each(|(a, s)| *a ^= s);
        diffuse(hash, &mut acc);
    }
    let last = &material[key_len * (stripes - 1)..key_len * stripes];
    acc.iter_mut().zip(last).for_each(|(a, l)| *a ^= l);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_undoes_split() {
        let key: Vec<u8> = (0..64).collect();
        let random: Vec<u8> = (0..64 * 4000).map(|i| (i * 7 % 251) as u8).collect();
        for hash in [Hash::Sha1, Hash::Sha256, Hash::Sha512] {
            let material = split(hash, &key, 4000, &random);
            assert_eq!(*merge(hash, &material, 64, 4000), key);
        }
    }
}
