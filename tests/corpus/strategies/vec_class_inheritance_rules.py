# corpus: data=tsla1h
"""Rules as a class hierarchy: a base Rule with __init__, subclasses calling super().__init__(),
and a RuleSet container with __len__, __iter__ and __getitem__."""


class Rule:
    def __init__(self, name, weight=1.0):
        self.name = name
        self.weight = weight

    def evaluate(self, df):
        raise NotImplementedError


class AboveMA(Rule):
    def __init__(self, period, weight=1.0):
        super().__init__(f"above_ma_{period}", weight)
        self.period = period

    def evaluate(self, df):
        return (df.close > df.close.rolling(self.period).mean()).to_numpy()


class RsiBelow(Rule):
    def __init__(self, level, weight=1.0):
        super().__init__(f"rsi_below_{level}", weight)
        self.level = level

    def evaluate(self, df):
        return talib.RSI(df.close.values, 14) < self.level


class RuleSet:
    def __init__(self, rules):
        self._rules = list(rules)

    def __len__(self):
        return len(self._rules)

    def __iter__(self):
        return iter(self._rules)

    def __getitem__(self, i):
        return self._rules[i]

    def score(self, df):
        total = sum(r.weight for r in self)
        return sum(r.weight * r.evaluate(df).astype(float) for r in self) / total


def generate_signals(data, params):
    rules = RuleSet([AboveMA(50, 2.0), AboveMA(200), RsiBelow(70, 0.5)])
    assert len(rules) == 3 and rules[0].name == "above_ma_50"
    score = rules.score(data)
    return np.where(score >= 0.7, 1.0, np.where(score <= 0.3, 0.0, np.nan))
