//! Room for a buffer filled anew each tick.

/// How much a buffer filled anew each tick should start with, so that it
/// need not grow: a vector grown from too little copies itself at each
/// doubling, every tick.
///
/// It is the most that recent ticks held, shrinking by 1/256 a tick so
/// that a burst does not keep its size for ever, and an eighth more so that
/// a tick a little busier than the last does not grow it. Sized by the last
/// tick alone, or shrinking faster, the quiet ticks between busy ones left
/// each busy tick to grow again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickRoom {
    most: usize,
}

impl TickRoom {
    pub const EMPTY: TickRoom = TickRoom { most: 0 };

    /// The room after a tick whose buffer held `len`.
    #[must_use]
    pub fn after(self, len: usize) -> TickRoom {
        TickRoom {
            most: len.max(self.most - self.most / 256),
        }
    }

    /// The capacity the next tick's buffer starts with.
    pub fn capacity(self) -> usize {
        self.most + self.most / 8
    }

    /// An empty vector with [`capacity`](Self::capacity).
    pub fn vec<T>(self) -> Vec<T> {
        Vec::with_capacity(self.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::TickRoom;

    #[test]
    fn a_busy_tick_after_quiet_ones_needs_no_growing() {
        let mut room = TickRoom::EMPTY;
        assert_eq!(room.capacity(), 0);
        room = room.after(800);
        for _ in 0..10 {
            room = room.after(2);
        }
        // Room for a tick as busy as the busy one, and a little busier.
        assert!(room.capacity() >= 820, "{room:?}");
        let mut buffer: Vec<u64> = room.vec();
        let capacity = buffer.capacity();
        buffer.extend(0..820);
        assert_eq!(buffer.capacity(), capacity, "it grew");
    }

    #[test]
    fn the_room_of_a_burst_shrinks_back() {
        let mut room = TickRoom::EMPTY.after(100_000);
        for _ in 0..2_000 {
            room = room.after(10);
        }
        assert!(room.capacity() < 1_000, "{room:?}");
    }
}
