"""Realistic fake households for demos and benchmarks (never for production data).

    from services.households.fake import load, write_csv
    ids = load(app, 100_000)                 # build and save in big batches
    write_csv(Path("households.csv"), 10_000)  # a file for POST /households/import

Names follow the common Vietnamese surname shares; communes are real codes from
vietnam_provinces (the list in force since July 2025); CCCDs are unique per run.
"""

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from vietnam_provinces import Ward

from services.households.domain import FLAGS, Household, LegalBasis, Member

SURNAMES = [("Nguyễn", 38), ("Trần", 11), ("Lê", 9.5), ("Phạm", 7), ("Hoàng", 5), ("Huỳnh", 4), ("Phan", 4.5),
            ("Vũ", 3.9), ("Võ", 3.5), ("Đặng", 2.1), ("Bùi", 2), ("Đỗ", 1.4), ("Hồ", 1.3), ("Ngô", 1.3),
            ("Dương", 1), ("Lý", 0.5), ("Đinh", 0.6), ("Trịnh", 0.4), ("Mai", 0.4), ("Lương", 0.3)]
MIDDLE_MALE = ["Văn", "Hữu", "Đức", "Minh", "Quang", "Thành", "Công", "Xuân", "Đình", "Ngọc", "Trọng", "Anh"]
MIDDLE_FEMALE = ["Thị", "Ngọc", "Thu", "Thanh", "Kim", "Phương", "Thị Thu", "Hồng", "Mai", "Bích", "Diệu"]
GIVEN_MALE = ["An", "Bình", "Cường", "Dũng", "Đạt", "Đức", "Hải", "Hùng", "Huy", "Khánh", "Khoa", "Long",
              "Lâm", "Minh", "Nam", "Nghĩa", "Phong", "Phúc", "Quân", "Quang", "Sơn", "Tài", "Thắng", "Thành",
              "Tiến", "Toàn", "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Hiếu", "Hoàng", "Kiên", "Lộc", "Nhân"]
GIVEN_FEMALE = ["Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hồng", "Hương", "Huyền",
                "Lan", "Liên", "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhung", "Oanh", "Phương",
                "Quỳnh", "Tâm", "Thảo", "Thu", "Thủy", "Trang", "Trinh", "Uyên", "Vân", "Xuân", "Yến", "Đào"]
VILLAGE_KINDS = ["Thôn", "Xóm", "Tổ dân phố", "Ấp", "Bản", "Khu phố"]
VILLAGE_NAMES = ["Đông", "Đoài", "Trung", "Thượng", "Hạ", "Bắc", "Nam", "Phú Mỹ", "An Lạc", "Tân Lập",
                 "Hòa Bình", "Quyết Tiến", "Đồng Tâm", "Thắng Lợi", "Bình An", "Phước Hậu"]
STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Quang Trung", "Lý Thường Kiệt",
           "Nguyễn Huệ", "Điện Biên Phủ", "Phan Đình Phùng", "Hùng Vương", "Võ Thị Sáu", "Ngô Quyền"]
MOBILE_PREFIXES = ["032", "033", "034", "035", "036", "037", "038", "039", "056", "058", "070", "076", "077",
                   "078", "079", "081", "082", "083", "084", "085", "086", "088", "089", "090", "091", "093",
                   "094", "096", "097", "098", "099"]
POVERTY = [("none", 85), ("near_poor", 6), ("poor", 5), ("social_protection", 4)]
SIZES = [(1, 10), (2, 18), (3, 22), (4, 26), (5, 14), (6, 7), (7, 3)]
LEGAL_BASIS = LegalBasis("public_task", "Chỉ thị 16/CT-TTg; Nghị định 13/2023/NĐ-CP Điều 17")


@dataclass
class FakeHousehold:
    """One household as plain values (a CSV group or the arguments of Household.register)."""

    head: dict[str, Any]
    members: list[dict[str, Any]]
    commune_code: str
    village: str
    address: str
    phone: str | None
    poverty_status: str
    legal_basis: LegalBasis = field(default=LEGAL_BASIS)

    def build(self, actor: str = "fake") -> Household:
        return Household.register(
            head=Member.new(**self.head), members=[Member.new(**m) for m in self.members],
            commune_code=self.commune_code, village=self.village, address=self.address, phone=self.phone,
            poverty_status=self.poverty_status, legal_basis=self.legal_basis, actor=actor)


class Faker:
    def __init__(self, seed: int = 0, communes: list[str] | None = None, villages_per_commune: int = 12):
        self.rng = random.Random(seed)
        self.communes = communes or [f"{int(w.code):05d}" for w in Ward.iter_all()]
        self.villages_per_commune = villages_per_commune
        self._cccds: set[str] = set()
        self._villages: dict[str, list[str]] = {}
        self._surnames, self._surname_weights = zip(*SURNAMES)
        self._this_year = date.today().year

    def villages(self, commune: str) -> list[str]:
        """The same few villages for a commune every time (names repeat across communes, as in life)."""
        if commune not in self._villages:
            local = random.Random(commune)
            kind = local.choice(VILLAGE_KINDS)
            names = local.sample(VILLAGE_NAMES + [str(i) for i in range(1, 16)], self.villages_per_commune)
            self._villages[commune] = [f"{kind} {name}" for name in names]
        return self._villages[commune]

    def _pick(self, pairs: list[tuple[Any, float]]) -> Any:
        values, weights = zip(*pairs)
        return self.rng.choices(values, weights)[0]

    def name(self, female: bool) -> str:
        surname = self.rng.choices(self._surnames, self._surname_weights)[0]
        if female:
            return f"{surname} {self.rng.choice(MIDDLE_FEMALE)} {self.rng.choice(GIVEN_FEMALE)}"
        return f"{surname} {self.rng.choice(MIDDLE_MALE)} {self.rng.choice(GIVEN_MALE)}"

    def cccd(self, year: int, female: bool, commune: str) -> str:
        province = int(Ward.from_code(int(commune)).province_code)
        century = (0 if year < 2000 else 2) + female
        while True:
            value = f"{province:03d}{century}{year % 100:02d}{self.rng.randrange(10**6):06d}"
            if value not in self._cccds:
                self._cccds.add(value)
                return value

    def person(self, relation: str, year: int, female: bool, commune: str, with_cccd: bool) -> dict[str, Any]:
        age = self._this_year - year
        flags = {"elderly": age >= 60, "child_under_6": age < 6,
                 "pregnant": female and 20 <= age <= 40 and self.rng.random() < 0.04,
                 "disabled": self.rng.random() < 0.02, "chronic_illness": self.rng.random() < (0.2 if age >= 60 else 0.03)}
        return {"name": self.name(female), "relation": relation, "birth_year": year,
                "cccd": self.cccd(year, female, commune) if with_cccd and age >= 14 else None, **flags}

    def household(self) -> FakeHousehold:
        rng = self.rng
        commune = rng.choice(self.communes)
        village = rng.choice(self.villages(commune))
        head_female = rng.random() < 0.3
        head_year = rng.randint(1940, 2000)
        head = self.person("head", head_year, head_female, commune, with_cccd=True)
        members = []
        size = self._pick(SIZES)
        if size > 1:
            spouse_year = min(self._this_year - 18, head_year + rng.randint(-5, 5))
            members.append(self.person("spouse", spouse_year, not head_female, commune, rng.random() < 0.7))
        for _ in range(size - 2):
            if rng.random() < 0.15 and head_year > 1965:
                members.append(self.person("parent", head_year - rng.randint(20, 35), rng.random() < 0.6,
                                           commune, rng.random() < 0.5))
            else:
                year = min(self._this_year, head_year + rng.randint(20, 40))
                members.append(self.person("child", year, rng.random() < 0.5, commune, rng.random() < 0.5))
        phone = None if rng.random() < 0.08 else rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"
        address = f"Số {rng.randint(1, 300)}, đường {rng.choice(STREETS)}"
        return FakeHousehold(head, members, commune, village, address, phone, self._pick(POVERTY))

    def households(self, n: int) -> Iterator[FakeHousehold]:
        for _ in range(n):
            yield self.household()


def load(app: Any, n: int, seed: int = 0, batch: int = 2000, communes: list[str] | None = None,
         actor: str = "fake") -> list[UUID]:
    """Build and save n households (and their head claims) in batches of `batch`."""
    ids: list[UUID] = []
    faker = Faker(seed, communes)
    chunk: list[Household] = []
    for fake in faker.households(n):
        chunk.append(fake.build(actor))
        if len(chunk) == batch:
            app.save_new(chunk, actor)
            ids += [h.id for h in chunk]
            chunk = []
    if chunk:
        app.save_new(chunk, actor)
        ids += [h.id for h in chunk]
    return ids


CSV_COLUMNS = ["household_ref", "relation", "full_name", "birth_year", "cccd", "phone", "commune_code",
               "village", "address", "poverty_status", *FLAGS, "legal_basis", "legal_reference"]


def write_csv(path: Path, n: int, seed: int = 0, communes: list[str] | None = None) -> Path:
    """A file in the import format (docs/households-import.md): one row per person."""
    faker = Faker(seed, communes)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for number, fake in enumerate(faker.households(n), start=1):
            ref = f"H{number:07d}"
            for index, person in enumerate([fake.head, *fake.members]):
                head = index == 0
                writer.writerow([
                    ref, person["relation"], person["name"], person["birth_year"], person["cccd"] or "",
                    fake.phone or "" if head else "", fake.commune_code if head else "",
                    fake.village if head else "", fake.address if head else "",
                    fake.poverty_status if head else "", *("x" if person[f] else "" for f in FLAGS),
                    fake.legal_basis.ground if head else "", fake.legal_basis.reference if head else "",
                ])
    return path
