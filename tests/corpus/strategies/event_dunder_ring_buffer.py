# corpus: data=eth1h
"""A hand-written ring buffer with dunder methods: __init__, __len__, __getitem__, __iter__,
__repr__ and __call__ (append), used as the strategy's price memory."""


class RingBuffer:
    def __init__(self, size):
        self._size = size
        self._data = [0.0] * size
        self._count = 0

    def __call__(self, value):
        self._data[self._count % self._size] = value
        self._count += 1

    def __len__(self):
        return min(self._count, self._size)

    def __getitem__(self, i):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        start = self._count - n
        return self._data[(start + i) % self._size]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"RingBuffer({list(self)[-3:]}..., size={self._size})"


def initialize(ctx):
    ctx.buf = RingBuffer(int(ctx.params.get("size", 36)))


def on_bar(ctx, bar):
    ctx.buf(bar.close)
    buf = ctx.buf
    if len(buf) < 36:
        return
    avg = sum(buf) / len(buf)
    lowest = min(buf)
    if ctx.position == 0 and buf[-1] <= lowest * 1.002 and buf[-1] < avg * 0.97:
        ctx.buy()
    elif ctx.position > 0 and buf[-1] > avg:
        ctx.close()
    if bar.index == 500:
        ctx.log(repr(buf))
