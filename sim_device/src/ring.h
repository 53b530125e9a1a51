// Bounded multi-producer multi-consumer ring of Request pointers (Vyukov's sequence-numbered
// cells). Free-running 64-bit counters masked on use; producer and consumer counters on separate
// cache lines. Never allocates after construction, never blocks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace simaccel::detail {

inline constexpr std::size_t kCacheLine = 64;

// One iteration of a spin-wait: tells the CPU (and a hypervisor) that this thread is waiting.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

template <class T> class MpmcRing {
  public:
    // Capacity is rounded up to a power of two.
    explicit MpmcRing(std::size_t min_capacity) {
        std::size_t cap = 1;
        while (cap < min_capacity)
            cap <<= 1;
        mask_ = cap - 1;
        cells_ = std::make_unique<Cell[]>(cap);
        for (std::size_t i = 0; i < cap; ++i)
            cells_[i].seq.store(i, std::memory_order_relaxed);
    }

    std::size_t capacity() const noexcept { return mask_ + 1; }

    // Fails when the cell at the head is still held: full, or a consumer that claimed that cell
    // one lap ago has not released it yet (so a count of items alone does not guarantee room).
    [[nodiscard]] bool try_push(T v) noexcept {
        std::uint64_t pos = head_.load(std::memory_order_relaxed);
        for (;;) {
            Cell &c = cells_[pos & mask_];
            // acquire: the consumer's release of this cell (it finished reading the old value).
            const std::uint64_t seq = c.seq.load(std::memory_order_acquire);
            const auto diff = static_cast<std::int64_t>(seq - pos);
            if (diff == 0) {
                if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed))
                    break;
            } else if (diff < 0) {
                return false; // full
            } else {
                pos = head_.load(std::memory_order_relaxed);
            }
        }
        Cell &c = cells_[pos & mask_];
        c.value = v;
        // release: publishes `value` to the consumer that sees seq == pos + 1.
        c.seq.store(pos + 1, std::memory_order_release);
        return true;
    }

    [[nodiscard]] bool try_pop(T *out) noexcept {
        std::uint64_t pos = tail_.load(std::memory_order_relaxed);
        for (;;) {
            Cell &c = cells_[pos & mask_];
            // acquire: pairs with the producer's release, makes `value` visible.
            const std::uint64_t seq = c.seq.load(std::memory_order_acquire);
            const auto diff = static_cast<std::int64_t>(seq - (pos + 1));
            if (diff == 0) {
                if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed))
                    break;
            } else if (diff < 0) {
                return false; // empty
            } else {
                pos = tail_.load(std::memory_order_relaxed);
            }
        }
        Cell &c = cells_[pos & mask_];
        *out = c.value;
        // release: the cell is free for the producer one lap later.
        c.seq.store(pos + mask_ + 1, std::memory_order_release);
        return true;
    }

  private:
    struct Cell {
        std::atomic<std::uint64_t> seq;
        T value;
    };
    std::unique_ptr<Cell[]> cells_;
    std::size_t mask_ = 0;
    alignas(kCacheLine) std::atomic<std::uint64_t> head_{0}; // producers
    alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0}; // consumers
    char pad_[kCacheLine - sizeof(std::atomic<std::uint64_t>)];
};

// Intrusive lock-free stack of objects with a `next` field: many producers push, one consumer
// takes everything at once. Used as the completion engine's inbox.
template <class T> class MpscStack {
  public:
    // Returns true if the stack was empty before (the consumer may need a wake-up).
    bool push(T *node) noexcept {
        T *head = head_.load(std::memory_order_relaxed);
        do {
            node->next = head;
            // seq_cst (not only release, which publishes the node to take_all()): the consumer's
            // sleep protocol pairs this push with its own seq_cst flag store (Dekker).
        } while (!head_.compare_exchange_weak(head, node, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
        return head == nullptr;
    }
    // Takes every node, oldest first.
    T *take_all() noexcept {
        // acquire: pairs with push()'s release.
        T *n = head_.exchange(nullptr, std::memory_order_acquire);
        T *rev = nullptr;
        while (n) {
            T *next = n->next;
            n->next = rev;
            rev = n;
            n = next;
        }
        return rev;
    }
    bool empty() const noexcept { return head_.load(std::memory_order_seq_cst) == nullptr; }

  private:
    alignas(kCacheLine) std::atomic<T *> head_{nullptr};
};

} // namespace simaccel::detail
