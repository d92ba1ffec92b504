//! The JEDEC ID of a SPI NOR flash (command 0x9F, "read identification"):
//! manufacturer, memory type and capacity bytes, read through any
//! embedded-hal [`SpiDevice`].

use embedded_hal::spi::{Operation, SpiDevice};

/// JEDEC "read identification".
pub const READ_ID: u8 = 0x9f;

/// The three ID bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JedecId {
    pub manufacturer: u8,
    pub memory_type: u8,
    pub capacity: u8,
}

impl JedecId {
    /// The manufacturers whose SPI NOR parts boards commonly carry (JEDEC
    /// JEP106 bank 1 codes); `None` for others.
    pub fn manufacturer_name(&self) -> Option<&'static str> {
        Some(match self.manufacturer {
            0x01 => "Spansion/Cypress/Infineon",
            0x1f => "Adesto/Atmel",
            0x20 => "Micron/Numonyx/ST",
            0x9d => "ISSI",
            0xbf => "SST/Microchip",
            0xc2 => "Macronix",
            0xc8 => "GigaDevice",
            0xef => "Winbond",
            _ => return None,
        })
    }

    /// All ones or all zeros: a floating or grounded MISO, no chip.
    pub fn is_absent(&self) -> bool {
        let b = [self.manufacturer, self.memory_type, self.capacity];
        b == [0xff; 3] || b == [0; 3]
    }
}

/// Reads the ID in one transaction (chip select held): the command byte,
/// then three bytes in.
pub fn read_jedec_id<S: SpiDevice>(spi: &mut S) -> Result<JedecId, S::Error> {
    let mut id = [0u8; 3];
    spi.transaction(&mut [Operation::Write(&[READ_ID]), Operation::Read(&mut id)])?;
    Ok(JedecId {
        manufacturer: id[0],
        memory_type: id[1],
        capacity: id[2],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::spi::{ErrorType, Operation};

    /// A SPI NOR that answers 0x9F with its ID bytes and records what the
    /// bus saw in each transaction.
    struct Flash {
        id: [u8; 3],
        transactions: usize,
        command: Option<u8>,
    }
    impl ErrorType for Flash {
        type Error = core::convert::Infallible;
    }
    impl SpiDevice for Flash {
        fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
            self.transactions += 1;
            // Chip select goes low: the first byte written is the command;
            // what follows is read while the chip shifts out its answer.
            let mut out = 0;
            for op in ops {
                match op {
                    Operation::Write(w) => {
                        for &byte in w.iter() {
                            self.command.get_or_insert(byte);
                        }
                    }
                    Operation::Read(r) => {
                        for byte in r.iter_mut() {
                            *byte = if self.command == Some(READ_ID) && out < 3 {
                                out += 1;
                                self.id[out - 1]
                            } else {
                                0xff
                            };
                        }
                    }
                    _ => unreachable!("only writes and reads are used"),
                }
            }
            Ok(())
        }
    }

    #[test]
    fn reads_the_id_in_one_transaction() {
        // The SST25VF016B of the SABRE Lite (and of QEMU's model of it).
        let mut f = Flash {
            id: [0xbf, 0x25, 0x41],
            transactions: 0,
            command: None,
        };
        let id = read_jedec_id(&mut f).unwrap();
        assert_eq!(f.transactions, 1);
        assert_eq!(f.command, Some(READ_ID));
        assert_eq!(
            id,
            JedecId {
                manufacturer: 0xbf,
                memory_type: 0x25,
                capacity: 0x41
            }
        );
        assert_eq!(id.manufacturer_name(), Some("SST/Microchip"));
        assert!(!id.is_absent());
    }

    #[test]
    fn no_chip_reads_as_absent() {
        let none = JedecId {
            manufacturer: 0xff,
            memory_type: 0xff,
            capacity: 0xff,
        };
        assert!(none.is_absent());
        assert_eq!(none.manufacturer_name(), None);
    }
}
