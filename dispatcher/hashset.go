package dispatcher

// hashSet is a set of 64-bit hashes with open addressing and linear
// probing: 8 bytes a slot, at most 3/4 full, so 10.7 to 21.3 bytes per
// member (a map[uint64]struct{} takes about 40). Zero marks an empty slot;
// the hash 0 is stored as 1. Add is not safe for concurrent use; Has is, as
// long as nothing adds.
type hashSet struct {
	slots []uint64
	n     int
}

func newHashSet(capacity int) *hashSet {
	size := 16
	for size*3/4 < capacity {
		size *= 2
	}
	return &hashSet{slots: make([]uint64, size)}
}

// hashSetOf returns a set of hashes.
func hashSetOf(hashes []uint64) *hashSet {
	s := newHashSet(len(hashes))
	for _, h := range hashes {
		s.Add(h)
	}
	return s
}

// Add inserts h and reports whether it was new.
func (s *hashSet) Add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := mix(h) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			s.n++
			return true
		case h:
			return false
		}
	}
}

// Has reports whether h is in the set.
func (s *hashSet) Has(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if s == nil || s.n == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := mix(h) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			return false
		case h:
			return true
		}
	}
}

// Len is the number of members.
func (s *hashSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Bytes is the memory the slots take.
func (s *hashSet) Bytes() int { return len(s.slots) * 8 }

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, len(old)*2)
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.Add(h)
		}
	}
}

// mix spreads the bits of a hash over the slot index (splitmix64's finaliser).
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// addrHash is the 64-bit hash of a normalised address (FNV-1a, then mixed).
// It is fixed, not seeded, so a resumed dispatch rebuilds the same set from
// the hashes its checkpoint stored.
func addrHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix(h)
}

// members returns the hashes in the set, in slot order.
func (s *hashSet) members() []uint64 {
	out := make([]uint64, 0, s.Len())
	for _, h := range s.slots {
		if h != 0 {
			out = append(out, h)
		}
	}
	return out
}
