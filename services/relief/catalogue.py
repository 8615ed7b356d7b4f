"""The items a committee receives and hands out, with the unit everyone counts them in.

Cash is an item too ("cash", in VND), so stock conservation holds for money and goods alike.
A perishable item must arrive with an expiry date; its lots are handed out first-expiry-first-out.
"""

from dataclasses import dataclass

from services.common.errors import Invalid

CASH = "cash"


@dataclass(frozen=True)
class Item:
    code: str
    name_vi: str
    name_en: str
    unit: str
    perishable: bool = False


ITEMS = {item.code: item for item in [
    Item(CASH, "Tiền mặt", "Cash", "VND"),
    Item("rice", "Gạo", "Rice", "kg"),
    Item("instant_noodles", "Mì ăn liền", "Instant noodles", "thùng", perishable=True),
    Item("cooking_oil", "Dầu ăn", "Cooking oil", "chai", perishable=True),
    Item("fish_sauce", "Nước mắm", "Fish sauce", "chai", perishable=True),
    Item("eggs", "Trứng", "Eggs", "quả", perishable=True),
    Item("milk", "Sữa", "Milk", "hộp", perishable=True),
    Item("canned_food", "Đồ hộp", "Canned food", "hộp", perishable=True),
    Item("vegetables", "Rau củ", "Vegetables", "kg", perishable=True),
    Item("drinking_water", "Nước uống", "Drinking water", "thùng", perishable=True),
    Item("sugar", "Đường", "Sugar", "kg"),
    Item("salt", "Muối", "Salt", "kg"),
    Item("face_masks", "Khẩu trang", "Face masks", "hộp"),
    Item("soap", "Xà phòng", "Soap", "bánh"),
    Item("hand_sanitiser", "Nước rửa tay khô", "Hand sanitiser", "chai"),
    Item("blanket", "Chăn", "Blanket", "cái"),
]}


class UnknownItem(Invalid):
    code = "unknown_item"

    def __init__(self, field: str, item_code: str):
        super().__init__(field, f"Mặt hàng '{item_code}' không có trong danh mục",
                         f"Item '{item_code}' is not in the catalogue")


def item(code: str, field: str = "item_code") -> Item:
    try:
        return ITEMS[code]
    except KeyError:
        raise UnknownItem(field, code) from None
