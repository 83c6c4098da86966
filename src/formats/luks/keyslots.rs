//! `amend` of a LUKS1 volume's key slots (QEMU's
//! `qcrypto_block_luks_amend_options`): `state=active` adds a passphrase,
//! `state=inactive` erases one, with QEMU's choice of slot, its refusals
//! and its words. The raw `luks` format takes the options bare, qcow2
//! under `encrypt.`.
//!
//! ```text
//!   active:    new-secret required, old-secret refused
//!              slot = keyslot (0..7) or the first inactive one
//!              an active slot is refused unless --force
//!              volume key <- unlock with the image's own key-secret
//!              store: new salt, iterations for iter-time, the material,
//!                     then the header
//!   inactive:  new-secret, iter-time refused
//!              keyslot:    old-secret (if given) must open it; it must be
//!                          active and not the last one (unless --force)
//!              old-secret: every slot it opens; not all the active ones
//!                          (unless --force)
//!              erase: the header first (slot off, salt and iterations
//!                     zeroed), then the material overwritten with random
//!                     bytes, five times
//! ```

use zeroize::Zeroizing;

use super::header::{HEADER_LEN, Header, SALT_LEN, SECTOR, SLOTS};
use super::volume::{self, ReadFn, WriteFn, random};
use crate::block::options::{OptDesc, OptType, Options};
use crate::error::{Error, Result};
use crate::strtox::strtoi64;

/// The luks format's amend options, in QEMU's table order (qcow2 has the
/// same under `encrypt.`).
pub const AMEND_OPTIONS: &[OptDesc] = &[
    OptDesc::new(
        "state",
        OptType::Str,
        "Select new state of affected keyslots (active/inactive)",
    ),
    OptDesc::new(
        "keyslot",
        OptType::Number,
        "Select a single keyslot to modify explicitly",
    ),
    OptDesc::new(
        "old-secret",
        OptType::Str,
        "Select all keyslots that match this password",
    ),
    OptDesc::new(
        "new-secret",
        OptType::Str,
        "New secret to set in the matching keyslots. Empty string to erase",
    ),
    OptDesc::new(
        "iter-time",
        OptType::Number,
        "Time to spend in PBKDF in milliseconds",
    ),
];

/// QEMU's default `iter-time` in milliseconds.
const DEFAULT_ITER_TIME: u64 = 2000;
/// QEMU's `QCRYPTO_BLOCK_LUKS_ERASE_ITERATIONS`.
const ERASE_PASSES: usize = 5;

/// What the amend options ask for (QEMU's `QCryptoBlockAmendOptionsLUKS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `state=active` (add) or `inactive` (erase).
    pub activate: bool,
    pub keyslot: Option<i64>,
    pub old_secret: Option<String>,
    pub new_secret: Option<String>,
    pub iter_time: Option<i64>,
}

impl Request {
    /// True when any of the key slot options is among `o` (under `prefix`).
    pub fn asked(o: &Options, prefix: &str) -> bool {
        AMEND_OPTIONS
            .iter()
            .any(|d| o.get(&format!("{prefix}{}", d.name)).is_some())
    }

    /// Reads the options under `prefix` as QAPI's visitor does (members in
    /// its order; errors name them without the prefix).
    pub fn parse(o: &Options, prefix: &str) -> Result<Request> {
        let get = |name: &str| o.get(&format!("{prefix}{name}"));
        let activate = match get("state") {
            None => return Err(Error::invalid("Parameter 'state' is missing")),
            Some("active") => true,
            Some("inactive") => false,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "Parameter 'state' does not accept value '{other}'"
                )));
            }
        };
        let int = |name: &str| {
            get(name)
                .map(|v| {
                    strtoi64(v)
                        .map_err(|_| Error::invalid(format!("Parameter '{name}' expects integer")))
                })
                .transpose()
        };
        Ok(Request {
            activate,
            new_secret: get("new-secret").map(str::to_string),
            old_secret: get("old-secret").map(str::to_string),
            keyslot: int("keyslot")?,
            iter_time: int("iter-time")?,
        })
    }
}

/// The volume's header and how to reach it.
struct Slots<'a> {
    header: Header,
    read: ReadFn<'a>,
    write: WriteFn<'a>,
}

/// Applies `request` to the volume whose header starts at byte 0 of
/// `read`/`write`'s storage; `key_secret` names the passphrase the image
/// was opened with.
pub fn amend(
    read: ReadFn,
    write: WriteFn,
    key_secret: &str,
    request: &Request,
    force: bool,
) -> Result<()> {
    let mut head = vec![0u8; HEADER_LEN];
    read(&mut head, 0)?;
    let mut slots = Slots {
        header: Header::parse(&head)?,
        read,
        write,
    };
    match request.activate {
        true => slots.add(key_secret, request, force),
        false => slots.erase(request, force),
    }
}

impl Slots<'_> {
    fn active(&self, i: usize) -> bool {
        self.header.slots[i].active
    }

    fn active_count(&self) -> usize {
        self.header.slots.iter().filter(|s| s.active).count()
    }

    /// The volume key from the slots `passphrase` opens.
    fn unlock(&self, passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (spec, hash) = volume::cipher_of(&self.header)?;
        volume::unlock(&self.header, spec, hash, self.read, passphrase)
    }

    /// Whether `passphrase` opens slot `i` (QEMU's `load_key` of one slot).
    fn opens(&self, i: usize, passphrase: &[u8]) -> Result<bool> {
        let mut one = self.header.clone();
        for (j, slot) in one.slots.iter_mut().enumerate() {
            slot.active &= i == j;
        }
        let (spec, hash) = volume::cipher_of(&self.header)?;
        match volume::unlock(&one, spec, hash, self.read, passphrase) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::error::ErrorKind::PermissionDenied => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// QEMU's `qcrypto_block_luks_amend_add_keyslot`.
    fn add(&mut self, key_secret: &str, r: &Request, force: bool) -> Result<()> {
        let Some(new_secret) = &r.new_secret else {
            return Err(Error::invalid(
                "'new-secret' is required to activate a keyslot",
            ));
        };
        if r.old_secret.is_some() {
            return Err(Error::invalid(
                "'old-secret' must not be given when activating keyslots",
            ));
        }
        let index = match r.keyslot {
            // QEMU keeps the slot in a C int and prints it unsigned here.
            Some(n) => match usize::try_from(n as i32).ok().filter(|&i| i < SLOTS) {
                Some(i) => i,
                None => {
                    return Err(Error::invalid(format!(
                        "Invalid keyslot {} specified, must be between 0 and {}",
                        n as i32 as u32,
                        SLOTS - 1
                    )));
                }
            },
            None => (0..SLOTS)
                .find(|&i| !self.active(i))
                .ok_or_else(|| Error::invalid("Can't add a keyslot - all keyslots are in use"))?,
        };
        if !force && self.active(index) {
            return Err(Error::invalid(format!(
                "Refusing to overwrite active keyslot {index} - please erase it first"
            )));
        }
        let old = crate::secret::lookup_utf8(key_secret)?;
        let key = self
            .unlock(old.bytes())
            .map_err(|e| e.append_hint("Failed to retrieve the master key"))?;
        let new = crate::secret::lookup_utf8(new_secret)?;
        // QEMU reads iter-time as a signed QAPI int into a uint64_t.
        let iter_time = r.iter_time.map_or(DEFAULT_ITER_TIME, |t| t as u64);
        let (_, hash) = volume::cipher_of(&self.header)?;
        let stored = volume::pbkdf2_rate(hash).and_then(|rate| {
            volume::store_key(
                &mut self.header,
                index,
                new.bytes(),
                &key,
                rate,
                iter_time,
                self.write,
            )
        });
        stored.map_err(|e| e.append_hint(&format!("Failed to write to keyslot {index}")))
    }

    /// QEMU's `qcrypto_block_luks_amend_erase_keyslots`.
    fn erase(&mut self, r: &Request, force: bool) -> Result<()> {
        if r.new_secret.is_some() {
            return Err(Error::invalid(
                "'new-secret' must not be given when erasing keyslots",
            ));
        }
        if r.iter_time.is_some() {
            return Err(Error::invalid(
                "'iter-time' must not be given when erasing keyslots",
            ));
        }
        let old = r
            .old_secret
            .as_deref()
            .map(crate::secret::lookup_utf8)
            .transpose()?;
        if let Some(n) = r.keyslot {
            // A C int, printed signed here.
            let n = n as i32;
            let Some(index) = usize::try_from(n).ok().filter(|&i| i < SLOTS) else {
                return Err(Error::invalid(format!(
                    "Invalid keyslot {n} specified, must be between 0 and {}",
                    SLOTS - 1
                )));
            };
            if let Some(old) = &old
                && !self.opens(index, old.bytes())?
            {
                return Err(Error::invalid(format!(
                    "Given keyslot {index} doesn't contain the given old password for erase operation"
                )));
            }
            if !force && !self.active(index) {
                return Err(Error::invalid(format!(
                    "Given keyslot {index} is already erased (inactive) "
                )));
            }
            if !force && self.active_count() == 1 {
                return Err(Error::invalid(format!(
                    "Attempt to erase the only active keyslot {index} which will erase all the data in the image irreversibly - refusing operation"
                )));
            }
            return self
                .erase_slot(index)
                .map_err(|e| e.append_hint(&format!("Failed to erase keyslot {index}")));
        }
        let Some(old) = old else {
            return Err(Error::invalid(
                "To erase keyslot(s), either explicit keyslot index or the password currently contained in them must be given",
            ));
        };
        let mut matching = Vec::new();
        for i in 0..SLOTS {
            if self.opens(i, old.bytes())? {
                matching.push(i);
            }
        }
        if matching.is_empty() {
            return Err(Error::invalid(
                "No keyslots match given (old) password for erase operation",
            ));
        }
        if !force && matching.len() == self.active_count() {
            return Err(Error::invalid(
                "All the active keyslots match the (old) password that was given and erasing them will erase all the data in the image irreversibly - refusing operation",
            ));
        }
        for i in matching {
            self.erase_slot(i)
                .map_err(|e| e.append_hint(&format!("Failed to erase keyslot {i}")))?;
        }
        Ok(())
    }

    /// QEMU's `qcrypto_block_luks_erase_key`: the header first, then the
    /// material, even when the header could not be written.
    fn erase_slot(&mut self, index: usize) -> Result<()> {
        let slot = &mut self.header.slots[index];
        slot.active = false;
        slot.iterations = 0;
        slot.salt = [0; SALT_LEN];
        let at = slot.key_offset as u64 * SECTOR;
        let len = self.header.key_bytes as usize * slot.stripes as usize;
        let header = (self.write)(&self.header.to_bytes(), 0);
        for _ in 0..ERASE_PASSES {
            (self.write)(&random(len)?, at)?;
        }
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::luks::volume::Volume;
    use crate::formats::luks::volume::tests::MemDisk;

    fn request(o: &str) -> Result<Request> {
        Request::parse(&Options::parse(&[o]).unwrap(), "")
    }

    #[test]
    fn reads_the_options_as_qapi_does() {
        assert_eq!(
            request("keyslot=abc").unwrap_err().to_string(),
            "Parameter 'state' is missing"
        );
        assert_eq!(
            request("state=on").unwrap_err().to_string(),
            "Parameter 'state' does not accept value 'on'"
        );
        assert_eq!(
            request("state=active,keyslot=9223372036854775808")
                .unwrap_err()
                .to_string(),
            "Parameter 'keyslot' expects integer"
        );
        let r = request("state=inactive,keyslot=0x3,old-secret=a").unwrap();
        assert_eq!((r.activate, r.keyslot), (false, Some(3)));
        assert_eq!(r.old_secret.as_deref(), Some("a"));
    }

    #[test]
    fn slots_are_chosen_and_refused_as_qemu_does() {
        let disk = MemDisk::new(3 << 20);
        disk.format(b"zero");
        let write = |b: &[u8], off: u64| disk.write(b, off);
        let read = |b: &mut [u8], off: u64| disk.read(b, off);
        for (id, data) in [("ks-zero", "zero"), ("ks-one", "one")] {
            crate::secret::define(crate::secret::SecretSpec {
                id: id.into(),
                data: Some(Zeroizing::new(data.into())),
                ..Default::default()
            })
            .unwrap();
        }
        let run_as = |key: &str, o: &str, force: bool| {
            amend(&read, &write, key, &request(o).unwrap(), force).map_err(|e| e.to_string())
        };
        let run = |o: &str, force: bool| run_as("ks-zero", o, force);
        let active = || {
            let mut head = vec![0u8; HEADER_LEN];
            read(&mut head, 0).unwrap();
            let h = Header::parse(&head).unwrap();
            h.slots.iter().map(|s| s.active as u8).collect::<Vec<_>>()
        };
        run("state=active,new-secret=ks-one,iter-time=1", false).unwrap();
        assert_eq!(active(), [1, 1, 0, 0, 0, 0, 0, 0]);
        assert!(Volume::open(&read, Some(b"one")).is_ok());
        assert_eq!(
            run("state=active,new-secret=ks-one,keyslot=1", false).unwrap_err(),
            "Refusing to overwrite active keyslot 1 - please erase it first"
        );
        assert_eq!(
            run("state=active,new-secret=ks-one,keyslot=-1", false).unwrap_err(),
            "Invalid keyslot 4294967295 specified, must be between 0 and 7"
        );
        assert_eq!(
            run("state=inactive,keyslot=0,old-secret=ks-one", false).unwrap_err(),
            "Given keyslot 0 doesn't contain the given old password for erase operation"
        );
        run("state=inactive,old-secret=ks-zero", false).unwrap();
        assert_eq!(active(), [0, 1, 0, 0, 0, 0, 0, 0]);
        assert!(Volume::open(&read, Some(b"zero")).is_err());
        assert_eq!(
            run("state=inactive,keyslot=1", false).unwrap_err(),
            "Attempt to erase the only active keyslot 1 which will erase all the data in the image irreversibly - refusing operation"
        );
        // Unlocked by the passphrase left (slot 1): the free slots in order.
        for _ in 0..SLOTS - 1 {
            run_as(
                "ks-one",
                "state=active,new-secret=ks-zero,iter-time=1",
                false,
            )
            .unwrap();
        }
        assert_eq!(active(), [1; 8]);
        assert_eq!(
            run("state=active,new-secret=ks-one", false).unwrap_err(),
            "Can't add a keyslot - all keyslots are in use"
        );
        run("state=inactive,old-secret=ks-zero", false).unwrap();
        assert_eq!(active(), [0, 1, 0, 0, 0, 0, 0, 0]);
        run("state=inactive,keyslot=1", true).unwrap();
        assert_eq!(active(), [0; 8]);
    }
}
