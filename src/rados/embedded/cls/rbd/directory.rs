//! `rbd_directory`: image names and ids both ways (`name_<name>` holds the
//! id, `id_<id>` the name) and the namespace's state.

use super::{args, check_exists, decode_stored, encoded, is_valid_id, key};
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, WR};

pub const METHODS: &[Method] = &[
    Method::new("dir_get_id", RD, dir_get_id),
    Method::new("dir_get_name", RD, dir_get_name),
    Method::new("dir_list", RD, dir_list),
    Method::new("dir_add_image", RD | WR, dir_add_image),
    Method::new("dir_remove_image", RD | WR, dir_remove_image),
    Method::new("dir_state_assert", RD, dir_state_assert),
    Method::new("dir_state_set", RD | WR, dir_state_set),
];

/// `cls::rbd::DirectoryState`.
const DIR_READY: u8 = 0;
const DIR_ADD_DISABLED: u8 = 1;

/// In: image name. Out: its id (an encoded string).
fn dir_get_id(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let name = args(input, |d| d.string())?;
    key(ctx, &format!("name_{name}"))
}

/// In: image id. Out: its name (an encoded string).
fn dir_get_name(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let id = args(input, |d| d.string())?;
    key(ctx, &format!("id_{id}"))
}

/// In: start after, max. Out: map of name -> id.
fn dir_list(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (start, max) = args(input, |d| Ok((d.string()?, d.u64()?)))?;
    let entries = ctx.omap_list(&format!("name_{start}"), "name_", max.min(1 << 20) as usize)?;
    Ok(encoded(|e| {
        e.u32(entries.len() as u32);
        for (k, v) in &entries {
            e.str(&k["name_".len()..]).raw(v);
        }
    }))
}

/// In: name, id. Creates the directory; both must be new. (A disabled
/// directory still takes them: librbd checks the state, not the OSD.)
fn dir_add_image(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    ctx.create(false)?;
    let (name, id) = args(input, |d| Ok((d.string()?, d.string()?)))?;
    if name.is_empty() || !is_valid_id(&id) {
        return Err(libc::EINVAL);
    }
    if ctx.omap_get(&format!("name_{name}"))?.is_some() {
        return Err(libc::EEXIST);
    }
    if ctx.omap_get(&format!("id_{id}"))?.is_some() {
        return Err(libc::EBADF);
    }
    ctx.omap_set(
        &format!("name_{name}"),
        encoded(|e| {
            e.str(&id);
        }),
    )?;
    ctx.omap_set(
        &format!("id_{id}"),
        encoded(|e| {
            e.str(&name);
        }),
    )?;
    Ok(Vec::new())
}

/// In: name, id, which must name each other.
fn dir_remove_image(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (name, id) = args(input, |d| Ok((d.string()?, d.string()?)))?;
    let stored_id = key(ctx, &format!("name_{name}"))?;
    let stored_name = key(ctx, &format!("id_{id}"))?;
    let stored_id = decode_stored(&stored_id, |d| d.string())?;
    let stored_name = decode_stored(&stored_name, |d| d.string())?;
    if stored_id != id || stored_name != name {
        return Err(libc::ESTALE);
    }
    ctx.omap_remove(&format!("name_{name}"))?;
    ctx.omap_remove(&format!("id_{id}"))?;
    Ok(Vec::new())
}

/// In: state u8; ENOENT unless the directory is in it.
fn dir_state_assert(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let want = args(input, |d| d.u8())?;
    match key(ctx, "state")?.first() {
        Some(&s) if s == want => Ok(Vec::new()),
        _ => Err(libc::ENOENT),
    }
}

/// In: state u8. Ready makes the directory; disabling adds needs an
/// existing, empty one.
fn dir_state_set(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let state = args(input, |d| d.u8())?;
    match state {
        DIR_READY => {}
        DIR_ADD_DISABLED => {
            check_exists(ctx)?;
            if !ctx.omap_list("name_", "name_", 1)?.is_empty() {
                return Err(libc::EBUSY);
            }
        }
        _ => return Err(libc::EINVAL),
    }
    ctx.omap_set("state", vec![state])?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use crate::ceph::cls_rbd as client;
    use crate::rados::embedded::cls::{Staged, call};

    #[test]
    fn directory() {
        let mut dir = Staged::default();
        assert_eq!(run(&mut dir, client::dir_list("", 10)), Err(libc::ENOENT));
        run(&mut dir, client::dir_add_image("vm1", "id1")).unwrap();
        run(&mut dir, client::dir_add_image("vm0", "id0")).unwrap();
        assert_eq!(
            run(&mut dir, client::dir_add_image("vm1", "id9")),
            Err(libc::EEXIST)
        );
        assert_eq!(
            run(&mut dir, client::dir_add_image("vm9", "id1")),
            Err(libc::EBADF)
        );
        assert_eq!(
            run(&mut dir, client::dir_add_image("", "id5")),
            Err(libc::EINVAL)
        );
        let list = client::decode_dir_list(&run(&mut dir, client::dir_list("", 10)).unwrap());
        assert_eq!(
            list.unwrap(),
            vec![("vm0".into(), "id0".into()), ("vm1".into(), "id1".into())]
        );
        let after = client::decode_dir_list(&run(&mut dir, client::dir_list("vm0", 10)).unwrap());
        assert_eq!(after.unwrap().len(), 1);
        assert_eq!(
            run(&mut dir, client::dir_remove_image("vm1", "id0")),
            Err(libc::ESTALE)
        );
        assert_eq!(
            run(&mut dir, client::dir_remove_image("nope", "id0")),
            Err(libc::ENOENT)
        );
        run(&mut dir, client::dir_remove_image("vm1", "id1")).unwrap();
        assert_eq!(
            run(&mut dir, client::dir_state_assert(0)),
            Err(libc::ENOENT)
        );
        call(&mut dir, "rbd", "dir_state_set", &[0]).unwrap();
        run(&mut dir, client::dir_state_assert(0)).unwrap();
        assert_eq!(
            run(&mut dir, client::dir_state_assert(1)),
            Err(libc::ENOENT)
        );
        assert_eq!(
            call(&mut dir, "rbd", "dir_state_set", &[1]),
            Err(libc::EBUSY)
        );
        assert_eq!(
            client::decode_u64(&run(&mut dir, client::get_all_features()).unwrap()).unwrap(),
            0xFFF
        );
    }
}

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": dir_get_id, dir_get_name, dir_list, dir_add_image, dir_remove_image, dir_state_assert, dir_state_set);
