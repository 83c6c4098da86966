//! cls_lock, server side: locks live in the object's `lock.<name>` xattr as
//! `lock_info_t`; the methods' inputs, outputs and errors are Ceph's (the
//! client halves are in `ceph::cls_lock`).

use std::collections::BTreeMap;

use super::{ClsResult, ObjectCtx, einval, eio};
use crate::ceph::cls_lock as client;
use crate::ceph::encoding::{Decoder, Encoder};

const EXCLUSIVE: u8 = 1;
const SHARED: u8 = 2;
const EXCLUSIVE_EPHEMERAL: u8 = 3;
const MAY_RENEW: u8 = 1;
const MUST_RENEW: u8 = 2;
const CLIENT: u8 = 8;

/// (entity type, entity number, cookie): `locker_id_t`, in Ceph's order.
type LockerId = (u8, i64, String);

/// One holder: address nonce and description (expiration is always 0 here).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    nonce: u32,
    description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LockInfo {
    lockers: BTreeMap<LockerId, Holder>,
    lock_type: u8,
    tag: String,
}

fn xattr(name: &str) -> String {
    format!("lock.{name}")
}

/// `entity_addr_t` (addr2 form, type LEGACY) for `127.0.0.1:0/<nonce>`.
pub fn encode_addr(e: &mut Encoder, nonce: u32) {
    e.u8(1).versioned(1, 1, |a| {
        a.u32(1).u32(nonce).u32(16);
        a.raw(&2u16.to_le_bytes())
            .raw(&0u16.to_be_bytes())
            .raw(&[127, 0, 0, 1])
            .raw(&[0; 8]);
    });
}

/// The nonce of an `ip:port/nonce` address.
pub fn address_nonce(address: &str) -> Option<u32> {
    address.rsplit_once('/')?.1.parse().ok()
}

fn encode_info(info: &LockInfo) -> Vec<u8> {
    let mut e = Encoder::new();
    e.versioned(1, 1, |b| {
        b.u32(info.lockers.len() as u32);
        for ((kind, num, cookie), holder) in &info.lockers {
            b.versioned(1, 1, |id| {
                id.u8(*kind).i64(*num).str(cookie);
            });
            b.versioned(1, 1, |li| {
                li.utime(0, 0);
                encode_addr(li, holder.nonce);
                li.str(&holder.description);
            });
        }
        b.u8(info.lock_type).str(&info.tag);
    });
    e.into_bytes()
}

fn read_lock(ctx: &dyn ObjectCtx, name: &str) -> ClsResult<LockInfo> {
    let Some(raw) = ctx.xattr_get(&xattr(name))? else {
        return Ok(LockInfo::default());
    };
    let decoded = client::decode_info(&raw).map_err(eio)?;
    Ok(LockInfo {
        lockers: decoded
            .lockers
            .into_iter()
            .map(|l| {
                (
                    (l.entity_type, l.entity_num, l.cookie),
                    Holder {
                        nonce: address_nonce(&l.address).unwrap_or(0),
                        description: l.description,
                    },
                )
            })
            .collect(),
        lock_type: decoded.lock_type,
        tag: decoded.tag,
    })
}

fn write_lock(ctx: &mut dyn ObjectCtx, name: &str, info: &LockInfo) -> ClsResult<()> {
    ctx.xattr_set(&xattr(name), encode_info(info))
}

fn me(ctx: &dyn ObjectCtx, cookie: &str) -> LockerId {
    (CLIENT, ctx.caller().gid as i64, cookie.to_string())
}

fn valid_type(t: u8) -> bool {
    matches!(t, EXCLUSIVE | SHARED | EXCLUSIVE_EPHEMERAL)
}

pub fn call(ctx: &mut dyn ObjectCtx, method: &str, input: &[u8]) -> ClsResult<Vec<u8>> {
    let mut d = Decoder::new(input);
    match method {
        "lock" => {
            let (name, kind, cookie, tag, description, _duration, flags) = d
                .versioned(1, |_, b| {
                    Ok((
                        b.string()?,
                        b.u8()?,
                        b.string()?,
                        b.string()?,
                        b.string()?,
                        b.utime()?,
                        b.u8()?,
                    ))
                })
                .map_err(einval)?;
            lock(ctx, &name, kind, &cookie, &tag, &description, flags)?;
            Ok(Vec::new())
        }
        "unlock" => {
            let (name, cookie) = d
                .versioned(1, |_, b| Ok((b.string()?, b.string()?)))
                .map_err(einval)?;
            let id = me(ctx, &cookie);
            remove_locker(ctx, &name, &id)?;
            Ok(Vec::new())
        }
        "break_lock" => {
            let (name, kind, num, cookie) = d
                .versioned(1, |_, b| Ok((b.string()?, b.u8()?, b.i64()?, b.string()?)))
                .map_err(einval)?;
            remove_locker(ctx, &name, &(kind, num, cookie))?;
            Ok(Vec::new())
        }
        "get_info" => {
            let name = d.versioned(1, |_, b| b.string()).map_err(einval)?;
            if !ctx.exists() {
                return Err(libc::ENOENT);
            }
            Ok(encode_info(&read_lock(ctx, &name)?))
        }
        "list_locks" => {
            if !ctx.exists() {
                return Err(libc::ENOENT);
            }
            // Only the rbd lock is ever taken by rbdimg; report what is set.
            let mut e = Encoder::new();
            let present = ctx.xattr_get(&xattr(client::RBD_LOCK_NAME))?.is_some();
            e.versioned(1, 1, |b| {
                b.u32(present as u32);
                if present {
                    b.str(client::RBD_LOCK_NAME);
                }
            });
            Ok(e.into_bytes())
        }
        "assert_locked" => {
            let (name, kind, cookie, tag) = d
                .versioned(1, |_, b| {
                    Ok((b.string()?, b.u8()?, b.string()?, b.string()?))
                })
                .map_err(einval)?;
            if !valid_type(kind) || name.is_empty() {
                return Err(libc::EINVAL);
            }
            if !ctx.exists() {
                return Err(libc::ENOENT);
            }
            let info = read_lock(ctx, &name)?;
            let id = me(ctx, &cookie);
            if info.lockers.is_empty()
                || info.lock_type != kind
                || info.tag != tag
                || !info.lockers.contains_key(&id)
            {
                return Err(libc::EBUSY);
            }
            Ok(Vec::new())
        }
        _ => Err(libc::EOPNOTSUPP),
    }
}

fn lock(
    ctx: &mut dyn ObjectCtx,
    name: &str,
    kind: u8,
    cookie: &str,
    tag: &str,
    description: &str,
    flags: u8,
) -> ClsResult<()> {
    if !valid_type(kind) || name.is_empty() || (flags & MUST_RENEW != 0 && flags & MAY_RENEW == 0) {
        return Err(libc::EINVAL);
    }
    let mut info = if ctx.exists() {
        read_lock(ctx, name)?
    } else {
        LockInfo::default()
    };
    if !info.lockers.is_empty() && info.tag != tag {
        return Err(libc::EBUSY);
    }
    let id = me(ctx, cookie);
    if info.lockers.contains_key(&id) {
        if flags & MAY_RENEW == 0 {
            return Err(libc::EEXIST);
        }
        info.lockers.remove(&id);
    } else if flags & MUST_RENEW != 0 {
        return Err(libc::ENOENT);
    }
    if !info.lockers.is_empty() && (kind != SHARED || info.lock_type != kind) {
        return Err(libc::EBUSY);
    }
    info.lockers.insert(
        id,
        Holder {
            nonce: ctx.caller().nonce,
            description: description.to_string(),
        },
    );
    info.lock_type = kind;
    info.tag = tag.to_string();
    write_lock(ctx, name, &info)
}

fn remove_locker(ctx: &mut dyn ObjectCtx, name: &str, id: &LockerId) -> ClsResult<()> {
    if !ctx.exists() {
        return Err(libc::ENOENT);
    }
    let mut info = read_lock(ctx, name)?;
    if info.lockers.remove(id).is_none() {
        return Err(libc::ENOENT);
    }
    if info.lock_type == EXCLUSIVE_EPHEMERAL && info.lockers.is_empty() {
        return ctx.remove();
    }
    write_lock(ctx, name, &info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rados::embedded::cls::{Caller, Staged};

    fn object(gid: u64) -> Staged {
        Staged {
            caller: Some(Caller {
                gid,
                nonce: gid as u32,
            }),
            ..Staged::empty()
        }
    }

    fn run(ctx: &mut Staged, call: crate::ceph::Call) -> ClsResult<Vec<u8>> {
        assert_eq!(call.class, "lock");
        super::call(ctx, call.method, &call.input)
    }

    #[test]
    fn exclusive_lock_lifecycle_and_errors() {
        let mut o = object(7);
        let take = client::lock("rbd_lock", "auto 1", "internal", "");
        run(&mut o, take.clone()).unwrap();
        assert_eq!(run(&mut o, take.clone()), Err(libc::EEXIST));
        run(
            &mut o,
            client::assert_locked("rbd_lock", "auto 1", "internal"),
        )
        .unwrap();
        assert_eq!(
            run(
                &mut o,
                client::assert_locked("rbd_lock", "auto 2", "internal")
            ),
            Err(libc::EBUSY)
        );
        assert_eq!(
            run(&mut o, client::assert_locked("rbd_lock", "auto 1", "other")),
            Err(libc::EBUSY)
        );
        // Another client: busy (and a different tag is busy too).
        o.caller = Some(Caller { gid: 8, nonce: 8 });
        assert_eq!(run(&mut o, take.clone()), Err(libc::EBUSY));
        assert_eq!(
            run(&mut o, client::lock("rbd_lock", "x", "", "")),
            Err(libc::EBUSY)
        );
        assert_eq!(
            run(&mut o, client::unlock("rbd_lock", "auto 1")),
            Err(libc::ENOENT)
        );
        let info =
            client::decode_info(&run(&mut o, client::get_info("rbd_lock")).unwrap()).unwrap();
        assert_eq!((info.lock_type, info.tag.as_str()), (1, "internal"));
        assert_eq!(info.lockers[0].entity(), "client.7");
        assert_eq!(info.lockers[0].address, "127.0.0.1:0/7");
        // Break it as the other client, then take it.
        run(&mut o, client::break_lock("rbd_lock", 8, 7, "auto 1")).unwrap();
        assert_eq!(
            run(&mut o, client::break_lock("rbd_lock", 8, 7, "auto 1")),
            Err(libc::ENOENT)
        );
        run(&mut o, client::lock("rbd_lock", "auto 9", "internal", "")).unwrap();
        run(&mut o, client::unlock("rbd_lock", "auto 9")).unwrap();
        let info =
            client::decode_info(&run(&mut o, client::get_info("rbd_lock")).unwrap()).unwrap();
        assert!(info.lockers.is_empty());
    }

    #[test]
    fn missing_objects_and_bad_input() {
        let mut gone = Staged::default();
        assert_eq!(
            run(&mut gone, client::get_info("rbd_lock")),
            Err(libc::ENOENT)
        );
        assert_eq!(
            run(&mut gone, client::assert_locked("rbd_lock", "", "")),
            Err(libc::ENOENT)
        );
        assert_eq!(
            run(&mut gone, client::unlock("rbd_lock", "")),
            Err(libc::ENOENT)
        );
        assert_eq!(
            run(&mut gone, client::assert_locked("", "", "")),
            Err(libc::EINVAL)
        );
        assert_eq!(super::call(&mut gone, "lock", &[1]), Err(libc::EINVAL));
        assert_eq!(super::call(&mut gone, "nope", &[]), Err(libc::EOPNOTSUPP));
        // Locking creates the object; an unlocked object reads as no lock.
        let mut o = object(1);
        o.exists = false;
        run(&mut o, client::lock("rbd_lock", "", "", "")).unwrap();
        assert!(o.exists);
        let empty =
            client::decode_info(&run(&mut Staged::empty(), client::get_info("rbd_lock")).unwrap())
                .unwrap();
        assert_eq!((empty.lockers.len(), empty.lock_type), (0, 0));
    }

    #[test]
    fn stored_form_is_the_get_info_reply_of_ceph() {
        let mut o = Staged {
            caller: Some(Caller {
                gid: 4235,
                nonce: 123456,
            }),
            ..Staged::empty()
        };
        run(
            &mut o,
            client::lock("rbd_lock", "auto 94819238490112", "internal", ""),
        )
        .unwrap();
        let reply = run(&mut o, client::get_info("rbd_lock")).unwrap();
        assert_eq!(reply, o.xattrs["lock.rbd_lock"]);
        // Ceph's worked example with the address 127.0.0.1 instead of 10.0.0.5.
        let mut expected = vec![0x01, 0x01, 0x6c, 0, 0, 0, 1, 0, 0, 0];
        expected.extend([
            1, 1, 0x20, 0, 0, 0, 8, 0x8b, 0x10, 0, 0, 0, 0, 0, 0, 0x13, 0, 0, 0,
        ]);
        expected.extend(b"auto 94819238490112");
        expected.extend([1, 1, 0x2f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend([
            1, 1, 1, 0x1c, 0, 0, 0, 1, 0, 0, 0, 0x40, 0xe2, 1, 0, 0x10, 0, 0, 0,
        ]);
        expected.extend([2, 0, 0, 0, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend([1, 8, 0, 0, 0]);
        expected.extend(b"internal");
        assert_eq!(reply, expected);
    }
}
