// A move-only, type-erased callable: C++20's stand-in for C++23's std::move_only_function.
//
//   MoveOnlyFunction<int(int)> add = [bias = std::make_unique<int>(2)](int x) { return x + *bias;
//   }; add(40) == 42; MoveOnlyFunction<int(int)> moved = std::move(add);  // `add` is now empty;
//   copying does not compile
//
// Unlike std::function it accepts callables that cannot be copied (lambdas that own a unique_ptr, a
// buffer, a promise), so an event can carry what it needs without shared ownership. The callable
// lives in one heap allocation owned by a std::unique_ptr: no void*, no manual delete.
//
// Invariants: a default-constructed, moved-from, or null-function-pointer wrapper is empty
// (`operator bool` is false); calling an empty one throws std::bad_function_call.
// Thread-safety: none of its own; it is as safe as the callable it holds.
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace moesim::sim {

template <typename Signature>
class MoveOnlyFunction;

template <typename R, typename... Args>
class MoveOnlyFunction<R(Args...)> {
 public:
  MoveOnlyFunction() = default;

  // Wraps any callable invocable as R(Args...); the callable is moved (or copied) into the wrapper.
  template <typename F>
  requires(!std::same_as<std::remove_cvref_t<F>, MoveOnlyFunction> &&
           std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
      MoveOnlyFunction(
          F&& f) {  // NOLINT: implicit, so a lambda can be passed where one is expected
    using Stored = std::decay_t<F>;
    if constexpr (std::is_pointer_v<Stored> || std::is_member_pointer_v<Stored>) {
      if (f == nullptr) return;  // a null function pointer makes an empty wrapper, as std::function
    }
    callable_ = std::make_unique<Holder<Stored>>(std::forward<F>(f));
  }

  MoveOnlyFunction(MoveOnlyFunction&&) noexcept = default;
  MoveOnlyFunction& operator=(MoveOnlyFunction&&) noexcept = default;
  MoveOnlyFunction(const MoveOnlyFunction&) = delete;
  MoveOnlyFunction& operator=(const MoveOnlyFunction&) = delete;
  ~MoveOnlyFunction() = default;

  explicit operator bool() const { return callable_ != nullptr; }

  // Not const: the callable may change its own state (a `mutable` lambda, a counter).
  R operator()(Args... args) {
    if (!callable_) throw std::bad_function_call();
    return callable_->Call(std::forward<Args>(args)...);
  }

 private:
  struct Callable {
    virtual ~Callable() = default;
    virtual R Call(Args&&... args) = 0;
  };

  template <typename F>
  struct Holder final : Callable {
    template <typename G>
    explicit Holder(G&& g) : f(std::forward<G>(g)) {}
    R Call(Args&&... args) override {
      if constexpr (std::is_void_v<R>) {
        std::invoke(f, std::forward<Args>(args)...);  // a result, if any, is dropped as R is void
      } else {
        return std::invoke(f, std::forward<Args>(args)...);
      }
    }
    F f;
  };

  std::unique_ptr<Callable> callable_;
};

}  // namespace moesim::sim
