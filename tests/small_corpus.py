"""A tiny corpus with questions whose wording differs from the documents', for store tests
that change what they touch (the SciFact fixtures are shared and must stay untouched)."""

DOCS = {
    "cats": ("cats purr and sleep in the sun all day long", "pet"),
    "dogs": ("dogs bark and fetch sticks in the park", "pet"),
    "fish": ("fish swim in water and breathe through gills", "wild"),
    "birds": ("birds fly south in winter and sing songs", "wild"),
    "trees": ("trees grow leaves in spring and drop them in autumn", "plant"),
    "cars": ("cars drive on roads and need fuel or electricity", "thing"),
    "rain": ("rain falls from clouds when air cools down", "weather"),
    "bread": ("bread is baked from flour water and yeast", "food"),
}

QUESTIONS = [
    ("which pet makes a purring sound", {"cats": 1}),
    ("animal that likes naps in sunshine", {"cats": 1}),
    ("what plays fetch", {"dogs": 1}),
    ("loyal pet for walks", {"dogs": 1}),
    ("how do aquatic animals get oxygen", {"fish": 1}),
    ("what migrates when it gets cold", {"birds": 1}),
    ("seasonal foliage", {"trees": 1}),
    ("electric vehicles", {"cars": 1}),
    ("where does precipitation come from", {"rain": 1}),
    ("what needs yeast", {"bread": 1}),
]
