# corpus: data=tsla1h
# Auto-generated strategy code. Block graph: [SMA]-[CROSS]-[AND]-[VOLUME]-[ENTRY] / [RSI]-[EXIT]
BLOCK_1_SMA_FAST = 9
BLOCK_2_SMA_SLOW = 21
BLOCK_3_VOLUME_LOOKBACK = 20
BLOCK_4_VOLUME_FACTOR = 1.0
BLOCK_5_RSI_PERIOD = 14
BLOCK_6_RSI_EXIT = 75
BLOCK_7_ALLOW_SHORT = True


def generate_signals(data, params):
    close = data["close"].values
    volume = data["volume"].values
    block_1 = talib.SMA(close, BLOCK_1_SMA_FAST)
    block_2 = talib.SMA(close, BLOCK_2_SMA_SLOW)
    block_3 = talib.SMA(volume, BLOCK_3_VOLUME_LOOKBACK)
    block_1_prev = np.concatenate([[np.nan], block_1[:-1]])
    block_2_prev = np.concatenate([[np.nan], block_2[:-1]])
    cross_up = (block_1 > block_2) & (block_1_prev <= block_2_prev)
    cross_down = (block_1 < block_2) & (block_1_prev >= block_2_prev)
    volume_ok = volume > block_3 * BLOCK_4_VOLUME_FACTOR
    block_5 = talib.RSI(close, BLOCK_5_RSI_PERIOD)
    entry_long = cross_up & volume_ok
    entry_short = cross_down & volume_ok & BLOCK_7_ALLOW_SHORT
    exit_long = block_5 > BLOCK_6_RSI_EXIT
    exit_short = block_5 < 100 - BLOCK_6_RSI_EXIT
    out = np.full(len(close), np.nan)
    out[exit_long | exit_short] = 0.0
    out[entry_long] = 1.0
    out[entry_short] = -1.0
    out[0] = 0.0
    return out
