//! `rbd_id.<image name>`: the object whose data is the image's id.

use super::{args, check_exists, decode_stored, encoded, is_valid_id};
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, WR};

pub const METHODS: &[Method] = &[
    Method::new("get_id", RD, get_id),
    Method::new("set_id", RD | WR, set_id),
];

/// Out: the id, as stored (an encoded string).
fn get_id(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    let size = ctx.size()?;
    if size == 0 {
        return Err(libc::ENOENT);
    }
    let data = ctx.read(0, size)?;
    decode_stored(&data, |d| d.string())?;
    Ok(data)
}

/// In: the id. The object must exist and have no id yet.
fn set_id(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    check_exists(ctx)?;
    let id = args(input, |d| d.string())?;
    if !is_valid_id(&id) {
        return Err(libc::EINVAL);
    }
    if ctx.size()? != 0 {
        return Err(libc::EEXIST);
    }
    ctx.write_full(&encoded(|e| {
        e.str(&id);
    }))?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use crate::ceph::cls_rbd as client;
    use crate::rados::embedded::cls::Staged;

    #[test]
    fn ids() {
        let mut id = Staged::empty();
        assert_eq!(run(&mut id, client::get_id()), Err(libc::ENOENT));
        assert_eq!(run(&mut id, client::set_id("a-b")), Err(libc::EINVAL));
        run(&mut id, client::set_id("abc123")).unwrap();
        assert_eq!(run(&mut id, client::set_id("abc123")), Err(libc::EEXIST));
        assert_eq!(
            client::decode_string(&run(&mut id, client::get_id()).unwrap()).unwrap(),
            "abc123"
        );
        assert_eq!(id.data, b"\x06\0\0\0abc123");
        assert_eq!(
            run(&mut Staged::default(), client::set_id("x")),
            Err(libc::ENOENT)
        );
    }
}

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": get_id, set_id);
