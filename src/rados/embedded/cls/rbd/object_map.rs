//! `rbd_object_map.<id>[.<snap id>]`: the object map as the object's data,
//! a `BitVector<2>` with CRCs.

use super::args;
use crate::ceph::object_map::{
    MAX_OBJECTS, OBJECT_EXISTS, OBJECT_EXISTS_CLEAN, ObjectMap, StoredLayout,
};
use crate::rados::embedded::cls::{ClsResult, Method, ObjectCtx, RD, WR, einval};

pub const METHODS: &[Method] = &[
    Method::new("object_map_load", RD, object_map_load),
    Method::new("object_map_save", RD | WR, object_map_save),
    Method::new("object_map_resize", RD | WR, object_map_resize),
    Method::new("object_map_update", RD | WR, object_map_update),
    Method::new("object_map_snap_add", RD | WR, object_map_snap_add),
    Method::new("object_map_snap_remove", RD | WR, object_map_snap_remove),
];

fn load_map(ctx: &dyn ObjectCtx) -> ClsResult<ObjectMap> {
    let size = ctx.size()?;
    if size == 0 {
        return Err(libc::ENOENT);
    }
    ObjectMap::decode(&ctx.read(0, size)?).map_err(einval)
}

fn save_map(ctx: &mut dyn ObjectCtx, map: &ObjectMap) -> ClsResult<Vec<u8>> {
    ctx.write_full(&map.encode())?;
    Ok(Vec::new())
}

/// Out: the map encoded with CRCs disabled (an empty footer).
fn object_map_load(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    let map = load_map(ctx)?;
    let mut bytes = map.encode();
    bytes.truncate(18 + map.len().div_ceil(4) as usize);
    bytes.extend_from_slice(&[0; 4]);
    Ok(bytes)
}

/// In: a whole map, stored as given (with CRCs).
fn object_map_save(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let map = ObjectMap::decode(input).map_err(einval)?;
    save_map(ctx, &map)
}

/// In: object count u64, default state u8. Shrinking may only drop
/// objects in the default state.
fn object_map_resize(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (count, default) = args(input, |d| Ok((d.u64()?, d.u8()?)))?;
    if count > MAX_OBJECTS {
        return Err(libc::EINVAL);
    }
    let mut map = match load_map(ctx) {
        Err(libc::ENOENT) => ObjectMap::new(0),
        other => other?,
    };
    let old = map.len();
    if count < old && !map.all(count..old, default) {
        return Err(libc::ESTALE);
    }
    map.resize(count);
    map.fill(old..count, default);
    save_map(ctx, &map)
}

/// In: start u64, end u64, state u8, [current state u8]: objects in
/// `[start, end)` (those in `current`, EXISTS_CLEAN counting as EXISTS)
/// take `state`. As the OSD's method, it reads the header, then only the
/// CRC blocks holding the range and their CRCs (a bad CRC there is
/// EINVAL; blocks elsewhere are not looked at), and writes back only
/// those blocks and CRCs: its cost does not grow with the map.
fn object_map_update(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let (start, end, state, current) = args(input, |d| {
        let (start, end, state) = (d.u64()?, d.u64()?, d.u8()?);
        let current = if d.bool()? { Some(d.u8()?) } else { None };
        Ok((start, end, state, current))
    })?;
    ctx.size()?;
    let header = ctx.read(0, StoredLayout::HEADER_LEN)?;
    let layout = StoredLayout::decode_header(&header).map_err(einval)?;
    if start >= end || end > layout.len {
        return Err(libc::ERANGE);
    }
    let blocks = layout.blocks(start, end);
    let (data_at, data_len) = layout.data_extent(&blocks);
    let (crc_at, crc_len) = layout.crc_extent(&blocks);
    let packed = ctx.read(data_at, data_len)?;
    if packed.len() as u64 != data_len {
        return Err(libc::EINVAL);
    }
    // A map stored without CRCs has none to check.
    let stored_crcs = ctx.read(crc_at, crc_len)?;
    let unchanged = packed
        .chunks(StoredLayout::BLOCK)
        .zip(stored_crcs.chunks_exact(4))
        .all(|(block, crc)| crc == StoredLayout::block_crc(block).to_le_bytes());
    if !unchanged {
        return Err(libc::EINVAL);
    }
    let first = StoredLayout::first_object(blocks.start);
    let objects = (data_len * 4).min(layout.len - first);
    let mut window = ObjectMap::from_packed(objects, packed);
    if window.update(start - first, end - first, state, current) {
        let packed = window.packed();
        ctx.write(data_at, packed)?;
        let crcs: Vec<u8> = packed
            .chunks(StoredLayout::BLOCK)
            .flat_map(|block| StoredLayout::block_crc(block).to_le_bytes())
            .collect();
        ctx.write(crc_at, &crcs)?;
    }
    Ok(Vec::new())
}

/// Marks every EXISTS object EXISTS_CLEAN (a snapshot was taken).
fn object_map_snap_add(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
    let mut map = load_map(ctx)?;
    if map.clean() {
        save_map(ctx, &map)?;
    }
    Ok(Vec::new())
}

/// In: the removed snapshot's map. EXISTS_CLEAN objects that were EXISTS
/// (or beyond the end) there become EXISTS again.
fn object_map_snap_remove(ctx: &mut dyn ObjectCtx, input: &[u8]) -> ClsResult<Vec<u8>> {
    let src = ObjectMap::decode(input).map_err(einval)?;
    let mut dst = load_map(ctx)?;
    let mut changed = false;
    for o in 0..dst.len() {
        if dst.get(o) == OBJECT_EXISTS_CLEAN && (o >= src.len() || src.get(o) == OBJECT_EXISTS) {
            dst.set(o, OBJECT_EXISTS);
            changed = true;
        }
    }
    if changed {
        save_map(ctx, &dst)?;
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use crate::ceph::cls_rbd as client;
    use crate::ceph::object_map::*;
    use crate::rados::embedded::cls::Staged;

    #[test]
    fn object_map_methods() {
        let mut m = Staged::default();
        assert_eq!(run(&mut m, client::object_map_load()), Err(libc::ENOENT));
        assert_eq!(
            run(&mut m, client::object_map_update(0, 1, 1, None)),
            Err(libc::ENOENT)
        );
        run(&mut m, client::object_map_resize(10, OBJECT_NONEXISTENT)).unwrap();
        // Stored with CRCs, loaded without.
        assert_eq!(m.data, ObjectMap::new(10).encode());
        let loaded = run(&mut m, client::object_map_load()).unwrap();
        assert_eq!(loaded.len(), 18 + 3 + 4);
        assert_eq!(ObjectMap::decode(&loaded).unwrap(), ObjectMap::new(10));
        run(&mut m, client::object_map_update(0, 3, OBJECT_EXISTS, None)).unwrap();
        run(
            &mut m,
            client::object_map_update(1, 2, OBJECT_PENDING, None),
        )
        .unwrap();
        // Conditional: only PENDING objects go NONEXISTENT.
        run(
            &mut m,
            client::object_map_update(0, 3, OBJECT_NONEXISTENT, Some(OBJECT_PENDING)),
        )
        .unwrap();
        let map = ObjectMap::decode(&m.data).unwrap();
        assert_eq!((map.get(0), map.get(1), map.get(2)), (1, 0, 1));
        assert_eq!(
            run(&mut m, client::object_map_update(3, 3, 1, None)),
            Err(libc::ERANGE)
        );
        assert_eq!(
            run(&mut m, client::object_map_update(0, 11, 1, None)),
            Err(libc::ERANGE)
        );
        // Shrinking over a non-default entry is stale.
        assert_eq!(
            run(&mut m, client::object_map_resize(1, OBJECT_NONEXISTENT)),
            Err(libc::ESTALE)
        );
        run(&mut m, client::object_map_resize(3, OBJECT_NONEXISTENT)).unwrap();
        assert_eq!(
            run(&mut m, client::object_map_resize(MAX_OBJECTS + 1, 0)),
            Err(libc::EINVAL)
        );
        // Snapshot add cleans; snapshot remove folds back.
        let before = run(&mut m, client::object_map_load()).unwrap();
        run(&mut m, client::object_map_snap_add()).unwrap();
        let map = ObjectMap::decode(&m.data).unwrap();
        assert_eq!(
            (map.get(0), map.get(2)),
            (OBJECT_EXISTS_CLEAN, OBJECT_EXISTS_CLEAN)
        );
        // EXISTS_CLEAN counts as EXISTS for a conditional update.
        let mut probe = m.clone();
        run(
            &mut probe,
            client::object_map_update(0, 1, OBJECT_PENDING, Some(OBJECT_EXISTS)),
        )
        .unwrap();
        assert_eq!(
            ObjectMap::decode(&probe.data).unwrap().get(0),
            OBJECT_PENDING
        );
        run(&mut m, client::object_map_snap_remove(&before)).unwrap();
        let map = ObjectMap::decode(&m.data).unwrap();
        assert_eq!((map.get(0), map.get(2)), (OBJECT_EXISTS, OBJECT_EXISTS));
        // A corrupt stored map is EINVAL.
        m.data[19] ^= 0xff;
        assert_eq!(run(&mut m, client::object_map_load()), Err(libc::EINVAL));
    }
}

#[cfg(test)]
mod range_tests {
    use super::super::test_util::run;
    use crate::ceph::cls_rbd as client;
    use crate::ceph::object_map::*;
    use crate::rados::embedded::cls::Staged;

    #[test]
    fn an_update_touches_only_the_blocks_of_its_range() {
        let mut m = Staged::default();
        run(
            &mut m,
            client::object_map_resize(40_000, OBJECT_NONEXISTENT),
        )
        .unwrap();
        let mut expected = ObjectMap::new(40_000);
        for (o, state) in [(0, OBJECT_EXISTS), (16_383, OBJECT_PENDING), (39_999, 3)] {
            run(&mut m, client::object_map_update(o, o + 1, state, None)).unwrap();
            expected.set(o, state);
        }
        // Across a block boundary, conditionally.
        run(
            &mut m,
            client::object_map_update(16_380, 16_390, OBJECT_EXISTS, Some(OBJECT_PENDING)),
        )
        .unwrap();
        expected.set(16_383, OBJECT_EXISTS);
        assert_eq!(m.data, expected.encode());
        // A bad CRC in block 0 is found by updates there, not elsewhere.
        let crc0 = m.data.len() - 12;
        m.data[crc0] ^= 1;
        let far = client::object_map_update(39_000, 39_001, OBJECT_EXISTS, None);
        run(&mut m, far).unwrap();
        let near = client::object_map_update(5, 6, OBJECT_EXISTS, None);
        assert_eq!(run(&mut m, near), Err(libc::EINVAL));
    }
}

#[cfg(test)]
crate::rados::embedded::cls::replay::osd_fixtures!("rbd": object_map_load, object_map_save, object_map_resize, object_map_update, object_map_snap_add, object_map_snap_remove);
