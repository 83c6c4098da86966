//! librbd's header watch/notify messages: what we send after changing an
//! image, and how we answer what other clients send while we hold the lock.

use crate::ceph::encoding::{DecodeResult, Decoder, Encoder};

/// librbd's notify timeout.
pub const NOTIFY_TIMEOUT_MS: u64 = 5000;

const ACQUIRED_LOCK: u32 = 0;
const RELEASED_LOCK: u32 = 1;
const REQUEST_LOCK: u32 = 2;
const HEADER_UPDATE: u32 = 3;

/// A client as librbd names it: global id and header watch handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId {
    pub gid: u64,
    pub handle: u64,
}

fn message(op: u32, body: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    e.versioned(7, 1, |b| {
        b.u32(op);
        body(b);
    });
    e.into_bytes()
}

pub fn header_update() -> Vec<u8> {
    message(HEADER_UPDATE, |_| {})
}

pub fn acquired_lock(me: ClientId) -> Vec<u8> {
    message(ACQUIRED_LOCK, |b| {
        b.u64(me.gid).u64(me.handle);
    })
}

pub fn released_lock(me: ClientId) -> Vec<u8> {
    message(RELEASED_LOCK, |b| {
        b.u64(me.gid).u64(me.handle);
    })
}

/// `ResponseMessage(result)`: the ack payload a lock owner answers with.
pub fn response(result: i32) -> Vec<u8> {
    let mut e = Encoder::new();
    e.versioned(1, 1, |b| {
        b.i32(result);
    });
    e.into_bytes()
}

/// What a received notification asks of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Another client wants the exclusive lock.
    RequestLock(ClientId),
    /// A lock change or header update: informational.
    Info,
    /// An operation request (resize, snapshot, ...) addressed to the owner.
    Operation(u32),
}

pub fn decode(payload: &[u8]) -> DecodeResult<Incoming> {
    if payload.is_empty() {
        return Ok(Incoming::Info);
    }
    Decoder::new(payload).versioned(7, |version, d| {
        let op = d.u32()?;
        Ok(match op {
            REQUEST_LOCK if version >= 2 => Incoming::RequestLock(ClientId {
                gid: d.u64()?,
                handle: d.u64()?,
            }),
            REQUEST_LOCK => Incoming::RequestLock(ClientId { gid: 0, handle: 0 }),
            ACQUIRED_LOCK | RELEASED_LOCK | HEADER_UPDATE => Incoming::Info,
            other => Incoming::Operation(other),
        })
    })
}

/// The ack for a notification while we do (or do not) own the exclusive
/// lock. As owner we refuse to hand the lock over and refuse remote
/// operations with -EROFS, as librbd's standard policy does; quiesce
/// requests are acknowledged (we have no guest to quiesce). A non-owner
/// acks with an empty payload, which is the only answer librbd accepts from
/// non-owners.
pub fn answer(incoming: Incoming, we_own_the_lock: bool, me: ClientId) -> Vec<u8> {
    const QUIESCE: u32 = 18;
    const UNQUIESCE: u32 = 19;
    match incoming {
        _ if !we_own_the_lock => Vec::new(),
        Incoming::Info => Vec::new(),
        Incoming::RequestLock(from) if from == me => Vec::new(),
        Incoming::RequestLock(_) => response(-libc::EROFS),
        Incoming::Operation(QUIESCE) => response(0),
        Incoming::Operation(UNQUIESCE) => Vec::new(),
        Incoming::Operation(_) => response(-libc::EROFS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_ceph_vectors() {
        assert_eq!(header_update(), [7, 1, 4, 0, 0, 0, 3, 0, 0, 0]);
        let me = ClientId {
            gid: 4235,
            handle: 94819238490112,
        };
        assert_eq!(
            acquired_lock(me),
            [
                7, 1, 0x14, 0, 0, 0, 0, 0, 0, 0, 0x8b, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x07, 0xd3,
                0x3c, 0x56, 0, 0
            ]
        );
        assert_eq!(response(-30), [1, 1, 4, 0, 0, 0, 0xe2, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn owner_refuses_lock_requests() {
        let me = ClientId { gid: 1, handle: 2 };
        let them = ClientId { gid: 3, handle: 4 };
        let mut request = vec![7, 1, 0x15, 0, 0, 0, 2, 0, 0, 0];
        request.extend_from_slice(&3u64.to_le_bytes());
        request.extend_from_slice(&4u64.to_le_bytes());
        request.push(0);
        let incoming = decode(&request).unwrap();
        assert_eq!(incoming, Incoming::RequestLock(them));
        assert_eq!(answer(incoming, true, me), response(-libc::EROFS));
        assert!(answer(incoming, false, me).is_empty());
        assert!(answer(decode(&header_update()).unwrap(), true, me).is_empty());
    }
}
