//! The `lock` object class (cls_lock) as librbd uses it for the exclusive
//! lock: `rbd_lock` on the header (tag "internal", cookie "auto <watch
//! handle>") and on the object map (empty tag and cookie).

use crate::ceph::Call;
use crate::ceph::encoding::{DecodeResult, Decoder, Encoder};

pub const RBD_LOCK_NAME: &str = "rbd_lock";
/// The tag librbd puts on header locks; anything else is "external".
pub const LIBRBD_TAG: &str = "internal";
pub const LOCK_EXCLUSIVE: u8 = 1;

/// The cookie librbd uses for a header lock held with watch `handle`.
pub fn librbd_cookie(handle: u64) -> String {
    format!("auto {handle}")
}

fn lock_call(method: &'static str, body: impl FnOnce(&mut Encoder)) -> Call {
    let mut e = Encoder::new();
    e.versioned(1, 1, body);
    Call {
        class: "lock",
        method,
        input: e.into_bytes(),
    }
}

/// Takes `name` exclusively forever with `cookie` and `tag`.
pub fn lock(name: &str, cookie: &str, tag: &str, description: &str) -> Call {
    lock_call("lock", |b| {
        b.str(name)
            .u8(LOCK_EXCLUSIVE)
            .str(cookie)
            .str(tag)
            .str(description)
            .utime(0, 0)
            .u8(0);
    })
}

pub fn unlock(name: &str, cookie: &str) -> Call {
    lock_call("unlock", |b| {
        b.str(name).str(cookie);
    })
}

/// Asserts, inside a compound write, that we hold `name` with `cookie`/`tag`.
pub fn assert_locked(name: &str, cookie: &str, tag: &str) -> Call {
    lock_call("assert_locked", |b| {
        b.str(name).u8(LOCK_EXCLUSIVE).str(cookie).str(tag);
    })
}

/// Removes another client's hold on `name` (entity type, number and cookie).
pub fn break_lock(name: &str, entity_type: u8, entity_num: i64, cookie: &str) -> Call {
    lock_call("break_lock", |b| {
        b.str(name).u8(entity_type).i64(entity_num).str(cookie);
    })
}

pub fn get_info(name: &str) -> Call {
    lock_call("get_info", |b| {
        b.str(name);
    })
}

/// One holder of a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locker {
    /// `entity_name_t`: type (8 = client) and number (the client's global id).
    pub entity_type: u8,
    pub entity_num: i64,
    pub cookie: String,
    /// `ip:port/nonce`, as `rbd lock ls` prints it.
    pub address: String,
    pub description: String,
}

impl Locker {
    pub fn entity(&self) -> String {
        let kind = match self.entity_type {
            0x01 => "mon",
            0x02 => "mds",
            0x04 => "osd",
            0x08 => "client",
            0x10 => "mgr",
            _ => "unknown",
        };
        format!("{kind}.{}", self.entity_num)
    }
}

/// `cls_lock_get_info_reply`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockInfo {
    pub lockers: Vec<Locker>,
    pub lock_type: u8,
    pub tag: String,
}

pub fn decode_info(out: &[u8]) -> DecodeResult<LockInfo> {
    Decoder::new(out).versioned(1, |_, d| {
        let n = d.count(16)?;
        let mut lockers = Vec::with_capacity(n);
        for _ in 0..n {
            let (entity_type, entity_num, cookie) =
                d.versioned(1, |_, id| Ok((id.u8()?, id.i64()?, id.string()?)))?;
            let (address, description) = d.versioned(1, |_, info| {
                info.utime()?;
                let address = decode_entity_addr(info)?;
                Ok((address, info.string()?))
            })?;
            lockers.push(Locker {
                entity_type,
                entity_num,
                cookie,
                address,
                description,
            });
        }
        Ok(LockInfo {
            lockers,
            lock_type: d.u8()?,
            tag: d.string()?,
        })
    })
}

/// `entity_addr_t`, in its modern (marker 1) or legacy (marker 0) form.
fn decode_entity_addr(d: &mut Decoder) -> DecodeResult<String> {
    let marker = d.u8()?;
    if marker == 0 {
        // Legacy: three more header bytes, nonce, 128-byte sockaddr_storage
        // whose family is in network byte order.
        d.raw(3)?;
        let nonce = d.u32()?;
        let ss = d.raw(128)?;
        let family = u16::from_be_bytes([ss[0], ss[1]]);
        return Ok(format_sockaddr(family, &ss[2..], nonce));
    }
    d.versioned(1, |_, a| {
        let _kind = a.u32()?;
        let nonce = a.u32()?;
        let len = a.u32()? as usize;
        if len < 2 {
            return Ok(format!("-/{nonce}"));
        }
        let sa = a.raw(len)?;
        let family = u16::from_le_bytes([sa[0], sa[1]]);
        Ok(format_sockaddr(family, &sa[2..], nonce))
    })
}

fn format_sockaddr(family: u16, data: &[u8], nonce: u32) -> String {
    let port = data
        .get(..2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .unwrap_or(0);
    match (family, data.len()) {
        (2, n) if n >= 6 => format!(
            "{}.{}.{}.{}:{port}/{nonce}",
            data[2], data[3], data[4], data[5]
        ),
        (10, n) if n >= 22 => {
            let ip =
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&data[6..22]).expect("16 bytes"));
            format!("[{ip}]:{port}/{nonce}")
        }
        _ => format!("-/{nonce}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::encoding::hex;

    #[test]
    fn lock_request_matches_ceph_vector() {
        let call = lock("rbd_lock", "auto 94819238490112", "internal", "");
        let mut expected = hex("01 01 3d 00 00 00 08 00 00 00");
        expected.extend_from_slice(b"rbd_lock");
        expected.extend(hex("01 13 00 00 00"));
        expected.extend_from_slice(b"auto 94819238490112");
        expected.extend(hex("08 00 00 00"));
        expected.extend_from_slice(b"internal");
        expected.extend(hex("00 00 00 00 00 00 00 00 00 00 00 00 00"));
        assert_eq!(
            (call.class, call.method, call.input),
            ("lock", "lock", expected)
        );
    }

    #[test]
    fn decodes_get_info_vector() {
        let mut b = hex(
            "01 01 6c 00 00 00 01 00 00 00 01 01 20 00 00 00 08 8b 10 00 00 00 00 00 00 13 00 00 00",
        );
        b.extend_from_slice(b"auto 94819238490112");
        b.extend(hex("01 01 2f 00 00 00 00 00 00 00 00 00 00 00"));
        b.extend(hex(
            "01 01 01 1c 00 00 00 01 00 00 00 40 e2 01 00 10 00 00 00 02 00 00 00 0a 00 00 05",
        ));
        b.extend(hex("00 00 00 00 00 00 00 00 00 00 00 00 01 08 00 00 00"));
        b.extend_from_slice(b"internal");
        let info = decode_info(&b).unwrap();
        assert_eq!(info.tag, "internal");
        assert_eq!(info.lock_type, 1);
        assert_eq!(info.lockers.len(), 1);
        let l = &info.lockers[0];
        assert_eq!(
            (l.entity().as_str(), l.cookie.as_str()),
            ("client.4235", "auto 94819238490112")
        );
        assert_eq!(l.address, "10.0.0.5:0/123456");
    }
}
